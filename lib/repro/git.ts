/**
 * The checkout's commit, for the provenance of repro records.
 *
 * @module
 */

/** The checkout's commit (with "-dirty" when it has changes), or null outside a git checkout. */
export async function gitCommit(): Promise<string | null> {
  try {
    const run = (args: string[]) =>
      new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output();
    const head = await run(["rev-parse", "HEAD"]);
    if (!head.success) return null;
    const dirty = await run(["status", "--porcelain", "--untracked-files=no"]);
    const id = new TextDecoder().decode(head.stdout).trim();
    return dirty.stdout.length > 0 ? `${id}-dirty` : id;
  } catch {
    return null;
  }
}
