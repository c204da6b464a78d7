/** Errors of the state tasks, with a stable code (shown as `Code: message` in a pod's termination message). */
export class StateOpError extends Error {
  override readonly name = 'StateOpError';

  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}
