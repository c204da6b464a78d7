/**
 * A reconcile error that retrying cannot fix (a spec that can never work): the
 * controller loop logs and counts it but does not requeue the key. Any other
 * error is retried with per-key backoff. As controller-runtime's
 * reconcile.TerminalError.
 */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export const isTerminal = (err: unknown): boolean => err instanceof TerminalError;
