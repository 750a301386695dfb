// Starts the chat shell: `node --import tsx examples/chat/main.ts [--endpoints URL,URL,...]`.
// Endpoints come from --endpoints, else CAIRN_ENDPOINTS, else the `cairn dev` cluster's HTTP ports.
import { createInterface } from "node:readline";
import { runChatShell } from "./chat-shell.js";
import { ChatStore } from "./chat-store.js";

function endpoints(argv: readonly string[]): string[] {
  const at = argv.indexOf("--endpoints");
  const listed = at >= 0 ? argv[at + 1] : process.env["CAIRN_ENDPOINTS"];
  if (listed !== undefined && listed.trim() !== "") return listed.split(",").map((e) => e.trim());
  return ["http://127.0.0.1:8081", "http://127.0.0.1:8082", "http://127.0.0.1:8083"];
}

const rl = createInterface({ input: process.stdin, output: process.stdout });
await runChatShell(new ChatStore(endpoints(process.argv.slice(2))), rl, (text) => process.stdout.write(text));
