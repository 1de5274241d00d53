// The contract between the `normclip` dispatcher (index.ts) and each command module.
export interface Command {
  /** The full text for `normclip <command> --help`. */
  usage: string
  /** Runs the command on the arguments after its name; resolves to the process exit code. */
  run(args: string[]): Promise<number>
}

/** A usage mistake (unknown option, missing value): printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {}
