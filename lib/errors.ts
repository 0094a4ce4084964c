/** An error caused by the caller's input: its message names the bad input and the fix, in one line. */
export class InputError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'InputError'
  }
}

/** A thing that was asked for does not exist (unknown tenant, package, route). */
export class NotFoundError extends InputError {
  constructor(message: string) {
    super(message)
    this.name = 'NotFoundError'
  }
}
