// The chat seed's `(chat)` shell on Cairn: create, login, logout, delete, list, send, messages and
// quit as the seed had them (a password asked on its own line, `(<user>) ` as the prompt once
// logged in, the seed's answers), plus `read` and `remove` for the seed's mark-as-read and
// delete-messages, and `leader`. After every command it tells the user when the leading node
// changed; a command the cluster cannot take (no majority) fails with a clear error and the shell
// carries on.
import type { Interface } from "node:readline";
import { CairnClientError } from "../../src/client/index.js";
import { ChatError, type ChatStore } from "./chat-store.js";

const help = [
  "Commands:",
  "  create <username> [password]   create an account (asks for the password if not given)",
  "  login <username> [password]    log in",
  "  logout                         log out",
  "  delete                         delete your account and its messages",
  "  list                           list every account",
  "  send <recipient> <message>     send a message",
  "  messages [n]                   your newest n messages (20), newest first, with read flags",
  "  read <id> [id...]              mark messages as read",
  "  remove <id> [id...]            delete messages from your inbox",
  "  leader                         which node leads the cluster",
  "  quit                           leave",
].join("\n");

/** What a failure means for the user, in words. */
function explain(error: unknown): string {
  if (error instanceof ChatError) return error.message;
  if (!(error instanceof CairnClientError)) throw error;
  switch (error.code) {
    case "ERR_UNAVAILABLE":
    case "ERR_NOT_LEADER":
    case "ERR_SHUTTING_DOWN":
    case "ERR_STORAGE_FAILED":
      return (
        `the cluster cannot take it now: no majority of its nodes is reachable (${error.code}). ` +
        "Nothing was changed; try again when nodes return"
      );
    case "ERR_TIMEOUT":
      return `no answer in time (${error.code}); it may still have happened`;
    default:
      return `${error.code}: ${error.message}`;
  }
}

/** Parses message ids: positive integers. */
function idsOf(words: readonly string[]): number[] | undefined {
  const ids = words.map(Number);
  return ids.length > 0 && ids.every((id) => Number.isSafeInteger(id) && id > 0) ? ids : undefined;
}

/** Runs the shell on `rl` until `quit` or the end of input. */
export async function runChatShell(
  store: ChatStore,
  rl: Interface,
  write: (text: string) => void,
): Promise<void> {
  const lines = rl[Symbol.asyncIterator]();
  let user: string | undefined;
  let leader: string | undefined;
  const say = (text: string) => write(`${text}\n`);

  const reportLeader = async (always: boolean) => {
    let now: string;
    try {
      const info = await store.leader();
      now = info === null ? "none" : `${info.name}${info.httpUrl !== null ? ` (${info.httpUrl})` : ""}`;
    } catch {
      // No node answered at all: say nothing new.
      return;
    }
    if (always) say(now === "none" ? "No leader right now" : `Leader: ${now}`);
    else if (now !== leader) say(now === "none" ? "[no leader right now]" : `[leader is now ${now}]`);
    leader = now;
  };

  const password = async (given: string | undefined): Promise<string | undefined> => {
    if (given !== undefined) return given;
    rl.setPrompt("Password: ");
    rl.prompt();
    const next = await lines.next();
    return next.done === true ? undefined : String(next.value);
  };

  const run = async (line: string): Promise<"quit" | undefined> => {
    const [command = "", ...args] = line.trim().split(/\s+/);
    const attempt = async (failure: string, action: () => Promise<void>) => {
      try {
        await action();
      } catch (error) {
        say(`${failure}: ${explain(error)}`);
      }
    };
    const loggedIn = (action: (me: string) => Promise<void>) => {
      if (user === undefined) {
        say("Log in first");
        return Promise.resolve();
      }
      return action(user);
    };
    switch (command.toLowerCase()) {
      case "":
        return undefined;
      case "help":
      case "?":
        say(help);
        return undefined;
      case "create": {
        const [name, given] = args;
        if (name === undefined) return void say("Usage: create <username> [password]");
        const secret = await password(given);
        if (secret === undefined) return "quit";
        await attempt("Failed to create account", async () => {
          await store.createAccount(name, secret);
          say("Account created successfully");
        });
        return undefined;
      }
      case "login": {
        const [name, given] = args;
        if (name === undefined) return void say("Usage: login <username> [password]");
        const secret = await password(given);
        if (secret === undefined) return "quit";
        await attempt("Failed to log in", async () => {
          await store.login(name, secret);
          user = name;
          say("Logged in successfully");
        });
        return undefined;
      }
      case "logout":
        await loggedIn(async () => {
          user = undefined;
          say("Logged out successfully");
        });
        return undefined;
      case "delete":
        await loggedIn((me) =>
          attempt("Failed to delete account", async () => {
            await store.deleteAccount(me);
            user = undefined;
            say("Account deleted successfully");
          }),
        );
        return undefined;
      case "list":
        await attempt("Failed to list accounts", async () => {
          const names = await store.listAccounts();
          say(names.length === 0 ? "No accounts" : ["Accounts:", ...names.map((n) => `- ${n}`)].join("\n"));
        });
        return undefined;
      case "send": {
        const match = /^\s*\S+\s+(\S+)\s+(.+)$/.exec(line);
        if (match === null) return void say("Usage: send <recipient> <message>");
        const [, recipient = "", content = ""] = match;
        await loggedIn((me) =>
          attempt("Failed to send message", async () => {
            await store.send(me, recipient, content);
            say("Message sent successfully");
          }),
        );
        return undefined;
      }
      case "messages": {
        const limit = args[0] === undefined ? 20 : Number(args[0]);
        if (!Number.isSafeInteger(limit) || limit < 1) return void say("Usage: messages [n]");
        await loggedIn((me) =>
          attempt("Failed to get messages", async () => {
            const inbox = await store.inbox(me, limit);
            if (inbox.length === 0) return say("No messages");
            say("Messages:");
            for (const m of inbox) {
              const when = new Date(m.sentMs).toISOString();
              say(`#${m.id} [${m.read ? "read" : "new"}] ${when} From ${m.sender}: ${m.content}`);
            }
          }),
        );
        return undefined;
      }
      case "read":
      case "remove": {
        const ids = idsOf(args);
        if (ids === undefined) return void say(`Usage: ${command} <id> [id...]`);
        await loggedIn((me) =>
          command === "read"
            ? attempt("Failed to mark messages", async () => {
                say(`Marked ${await store.markRead(me, ids)} message(s) as read`);
              })
            : attempt("Failed to delete messages", async () => {
                say(`Deleted ${await store.deleteMessages(me, ids)} message(s)`);
              }),
        );
        return undefined;
      }
      case "leader":
        await reportLeader(true);
        return undefined;
      case "quit":
      case "exit":
        say("Bye");
        return "quit";
      default:
        say(`Unknown command: ${command} (type help)`);
        return undefined;
    }
  };

  say("Fault-tolerant chat on Cairn. Type help for the commands.");
  await reportLeader(true);
  for (;;) {
    rl.setPrompt(`(${user ?? "chat"}) `);
    rl.prompt();
    const next = await lines.next();
    if (next.done === true) break;
    if ((await run(String(next.value))) === "quit") break;
    await reportLeader(false);
  }
  rl.close();
}
