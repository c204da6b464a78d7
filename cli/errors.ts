/**
 * An error the user can act on: the CLI prints its message on one line (no
 * stack trace) and exits with its code. Anything else that escapes a command
 * is a bug and is printed with its stack when SLUICE_DEBUG is set.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The message to show for any thrown value, without a stack. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
