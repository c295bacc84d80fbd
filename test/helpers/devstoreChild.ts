// Child process for the durability test: runs the embedded store on the SQLite file given as the
// first argument and prints {"origin": ...} on one stdout line once it listens. The parent kills
// it with SIGKILL mid-stream; SIGTERM closes it cleanly.
import { EMULATOR_KEY, startDevStore } from "../../src/devstore/server.js";

const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: devstoreChild.ts <sqlite file>\n");
  process.exit(2);
}
const store = await startDevStore({ file, masterKey: EMULATOR_KEY });
process.stdout.write(`${JSON.stringify({ origin: store.origin })}\n`);
process.on("SIGTERM", () => {
  store.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
