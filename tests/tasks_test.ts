/**
 * The task files stay thin: at most 100 lines each, and `--help` of every task
 * exits 0 and lists the config keys its command line takes.
 */
import assert from "node:assert/strict";
import { selectKeys, type TaskSpec } from "../lib/config/mod.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TASKS = [...Deno.readDirSync(`${ROOT}tasks`)]
  .filter((e) => e.isFile && e.name.endsWith(".ts"))
  .map((e) => e.name)
  .sort();

Deno.test("every tasks/*.ts is at most 100 lines", () => {
  assert.ok(TASKS.length >= 7, `found ${TASKS.join(", ")}`);
  for (const name of TASKS) {
    const lines = Deno.readTextFileSync(`${ROOT}tasks/${name}`).split("\n").length - 1;
    assert.ok(lines <= 100, `tasks/${name} has ${lines} lines; move its work into lib/`);
  }
});

Deno.test("every task's --help exits 0 and lists its flags and keys", async () => {
  await Promise.all(TASKS.map(async (name) => {
    const { TASK } = await import(`../tasks/${name}`) as { TASK: TaskSpec };
    assert.equal(`${TASK.name}.ts`, name, "TASK.name is the file name");
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `tasks/${name}`, "--help"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const out = new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 0, `${name}: ${new TextDecoder().decode(r.stderr)}`);
    assert.ok(out.startsWith(`Usage: deno task ${TASK.name} `), `${name}: ${out.slice(0, 80)}`);
    for (const key of selectKeys(TASK.keys)) {
      assert.ok(out.includes(`--${key}=`), `${name}: ${key}`);
    }
    for (const flag of Object.keys(TASK.flags ?? {})) {
      assert.ok(out.includes(`--${flag}`), `${name}: --${flag}`);
    }
  }));
});
