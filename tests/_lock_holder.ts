/**
 * Test helper process: takes the run lock of the folder `Deno.args[0]` and
 * holds it until SIGTERM (then releases it and exits 0) or 60 s. Exits 3 with
 * the message when the lock is held by another live process.
 */
import { RunLock, RunLockedError } from "../lib/run/lock.ts";

try {
  const lock = await RunLock.acquire(Deno.args[0], { command: "tests/_lock_holder.ts" });
  const done = () => {
    lock.releaseSync();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", done);
  setTimeout(done, 60_000);
} catch (e) {
  if (!(e instanceof RunLockedError)) throw e;
  console.error(`error: ${e.message}`);
  Deno.exit(3);
}
