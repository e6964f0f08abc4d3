/** The boot fact (src/agent/boot_id.ts) against a fake boot id file. */
import assert from "node:assert/strict";
import { bootIdPath, checkReboot, KERNEL_BOOT_ID } from "../src/agent/boot_id.ts";

Deno.test("checkReboot: unknown on the first run, false on the same boot, true after a new boot id", async () => {
  const dir = await Deno.makeTempDir({ prefix: "baton-boot-test-" });
  const id = `${dir}/fake_boot_id`;
  try {
    await Deno.writeTextFile(id, "11111111-aaaa\n");
    assert.equal(await checkReboot(dir, id), null);
    assert.equal(await checkReboot(dir, id), false);
    await Deno.writeTextFile(id, "22222222-bbbb\n");
    assert.equal(await checkReboot(dir, id), true);
    assert.equal(await checkReboot(dir, id), false);
    assert.equal(await checkReboot(dir, `${dir}/missing`), null, "unreadable: unknown");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bootIdPath: BATON_BOOT_ID_FILE, else the kernel's; the kernel's can be read here", async () => {
  assert.equal(bootIdPath(() => "/tmp/x"), "/tmp/x");
  assert.equal(bootIdPath(() => undefined), KERNEL_BOOT_ID);
  assert.match((await Deno.readTextFile(KERNEL_BOOT_ID)).trim(), /^[0-9a-f-]{36}$/);
});
