// The chat application's data, kept in a Cairn cluster through the public client library only:
// accounts are keys (created once, with `ifAbsent`), each account's inbox is a stream (a message is
// an append whose id deduplicates retries, so a message sent once arrives once), and read flags are
// keys beside it. An inbox is named after the account it belongs to and a random id made when the
// account was created, so an account created again under a deleted one's name never sees what an
// interrupted deletion left behind. Every operation goes to any node; the client finds the leader.
import { randomUUID } from "node:crypto";
import { CairnClient, CairnClientError } from "../../src/client/index.js";
import { hashPassword, type PasswordHash, verifyPassword } from "./password.js";

/** A failure the user can act on, with the text the shell shows. */
export class ChatError extends Error {
  override readonly name = "ChatError";
}

/** One message in an inbox. */
export interface InboxMessage {
  /** The message's number in its recipient's inbox (the stream sequence). */
  readonly id: number;
  readonly sender: string;
  readonly content: string;
  /** When the cluster stored it (the leader's clock), milliseconds since the epoch. */
  readonly sentMs: number;
  readonly read: boolean;
}

/** The cluster's leader as last reported, or null while there is none. */
export interface LeaderInfo {
  readonly name: string;
  readonly httpUrl: string | null;
}

const USERNAME = /^[A-Za-z0-9_-]{1,32}$/;
/** Inbox pages read at most for one listing (1,000 messages each). */
const inboxPagesMax = 100;
/** How long the stream remembers a message id, so a retried send is stored once. */
const dedupeWindowMs = 24 * 3600 * 1000;

/** What an account key holds. */
interface AccountRecord extends PasswordHash {
  /** The stream of this account's inbox. */
  readonly inbox: string;
  readonly createdMs: number;
}

const accountKey = (user: string) => `chat/accounts/${user}`;
const readPrefix = (inbox: string) => `chat/read/${inbox}/`;

function checkUsername(user: string): void {
  if (!USERNAME.test(user)) {
    throw new ChatError("A username is 1 to 32 letters, digits, '-' or '_'");
  }
}

function isCode(error: unknown, code: string): boolean {
  return error instanceof CairnClientError && error.code === code;
}

/** The chat operations over one cluster. */
export class ChatStore {
  readonly #client: CairnClient;

  /** Talks to the cluster through `endpoints` (any nodes' HTTP URLs). */
  constructor(endpoints: readonly string[], options: { retryBudgetMs?: number } = {}) {
    this.#client = new CairnClient({ endpoints, retryBudgetMs: options.retryBudgetMs ?? 10_000 });
  }

  /** Creates an account once: a second create of the same name fails, whatever its password. */
  async createAccount(user: string, password: string): Promise<void> {
    checkUsername(user);
    if (password === "") throw new ChatError("The password may not be empty");
    const inbox = `chat.inbox.${user}.${randomUUID().slice(0, 8)}`;
    const record: AccountRecord = { ...(await hashPassword(password)), inbox, createdMs: Date.now() };
    try {
      await this.#client.put(accountKey(user), JSON.stringify(record), { ifAbsent: true });
    } catch (error) {
      if (isCode(error, "ERR_CONFLICT")) throw new ChatError("Username already exists");
      throw error;
    }
    await this.#createInbox(inbox);
  }

  /** Checks a user's password; "Invalid credentials" when the account or password is wrong. */
  async login(user: string, password: string): Promise<void> {
    const account = await this.#account(user);
    if (account === undefined || !(await verifyPassword(password, account))) {
      throw new ChatError("Invalid credentials");
    }
  }

  /** Deletes an account, its inbox and its read flags. */
  async deleteAccount(user: string): Promise<void> {
    const account = await this.#account(user);
    if (account === undefined) throw new ChatError(`No such user: ${user}`);
    // The account first, so no one can address a message to the inbox being deleted.
    await this.#client.delete(accountKey(user));
    await this.#client.deleteStream(account.inbox);
    for (let page = 0; page < inboxPagesMax; page++) {
      const flags = await this.#client.list({ prefix: readPrefix(account.inbox), limit: 1000 });
      for (const item of flags.items) await this.#client.delete(item.key);
      if (flags.next === null) break;
    }
  }

  /** Every account name, in order. */
  async listAccounts(): Promise<string[]> {
    const names: string[] = [];
    let after: string | undefined;
    do {
      const page = await this.#client.list({
        prefix: "chat/accounts/",
        limit: 1000,
        ...(after !== undefined ? { after } : {}),
      });
      names.push(...page.items.map((item) => item.key.slice("chat/accounts/".length)));
      after = page.next ?? undefined;
    } while (after !== undefined);
    return names;
  }

  /**
   * Sends `content` from `sender` to `recipient`'s inbox. `messageId` makes a retry safe: the
   * inbox stores each id once.
   */
  async send(sender: string, recipient: string, content: string, messageId = randomUUID()): Promise<void> {
    if (content.trim() === "") throw new ChatError("A message may not be empty");
    const account = await this.#account(recipient);
    if (account === undefined) throw new ChatError(`No such user: ${recipient}`);
    const append = () =>
      this.#client.append(account.inbox, JSON.stringify({ sender, content }), { id: messageId });
    try {
      await append();
    } catch (error) {
      if (!isCode(error, "ERR_NOT_FOUND")) throw error;
      // The account's creation stopped before its inbox was made: make it now.
      await this.#createInbox(account.inbox);
      await append();
    }
  }

  /** The newest `limit` messages of `user`'s inbox, newest first, with their read flags. */
  async inbox(user: string, limit = 20): Promise<InboxMessage[]> {
    const account = await this.#account(user);
    if (account === undefined) throw new ChatError(`No such user: ${user}`);
    const all: InboxMessage[] = [];
    const read = await this.#readFlags(account.inbox);
    let from: number | undefined;
    for (let page = 0; page < inboxPagesMax; page++) {
      let messages: Awaited<ReturnType<CairnClient["read"]>>;
      try {
        messages = await this.#client.read(account.inbox, { limit: 1000, ...(from ? { from } : {}) });
      } catch (error) {
        // No inbox yet: nothing was ever delivered.
        if (isCode(error, "ERR_NOT_FOUND")) return [];
        throw error;
      }
      for (const item of messages.messages) {
        const body = JSON.parse(item.payload) as { sender: string; content: string };
        all.push({ id: item.seq, ...body, sentMs: item.tsMs, read: read.has(item.seq) });
      }
      if (messages.messages.length === 0 || messages.next > messages.lastSeq) break;
      from = messages.next;
    }
    return all.slice(-limit).reverse();
  }

  /** Marks messages of `user`'s inbox as read; answers how many of them exist. */
  async markRead(user: string, ids: readonly number[]): Promise<number> {
    const inbox = await this.#inboxOf(user);
    let marked = 0;
    for (const id of ids) {
      if (!(await this.#holds(inbox, id))) continue;
      await this.#client.put(`${readPrefix(inbox)}${id}`, "1");
      marked++;
    }
    return marked;
  }

  /** Deletes messages from `user`'s inbox; answers how many were there. */
  async deleteMessages(user: string, ids: readonly number[]): Promise<number> {
    const inbox = await this.#inboxOf(user);
    let deleted = 0;
    for (const id of ids) {
      if (!(await this.#holds(inbox, id))) continue;
      await this.#client.request(
        "DELETE",
        `/v1/streams/${encodeURIComponent(inbox)}/messages/${id}`,
        undefined,
        randomUUID(),
      );
      await this.#client.delete(`${readPrefix(inbox)}${id}`);
      deleted++;
    }
    return deleted;
  }

  /** The node that leads the cluster now, or null while there is none. */
  async leader(): Promise<LeaderInfo | null> {
    const status = (await this.#client.request("GET", "/v1/cluster")) as {
      leader: { id: number; name: string | null; httpUrl: string | null } | null;
    };
    if (status.leader === null) return null;
    return { name: status.leader.name ?? `node ${status.leader.id}`, httpUrl: status.leader.httpUrl };
  }

  async #account(user: string): Promise<AccountRecord | undefined> {
    if (!USERNAME.test(user)) return undefined;
    const item = await this.#client.get(accountKey(user));
    return item === undefined ? undefined : (JSON.parse(item.value) as AccountRecord);
  }

  async #inboxOf(user: string): Promise<string> {
    const account = await this.#account(user);
    if (account === undefined) throw new ChatError(`No such user: ${user}`);
    return account.inbox;
  }

  /** Creates an inbox stream; creating one that exists is a no-op. */
  async #createInbox(inbox: string): Promise<void> {
    await this.#client.createStream(inbox, { dedupeWindowMs });
  }

  async #holds(inbox: string, id: number): Promise<boolean> {
    try {
      await this.#client.request("GET", `/v1/streams/${encodeURIComponent(inbox)}/messages/${id}`);
      return true;
    } catch (error) {
      if (isCode(error, "ERR_NOT_FOUND")) return false;
      throw error;
    }
  }

  async #readFlags(inbox: string): Promise<Set<number>> {
    const read = new Set<number>();
    let after: string | undefined;
    for (let page = 0; page < inboxPagesMax; page++) {
      const flags = await this.#client.list({
        prefix: readPrefix(inbox),
        limit: 1000,
        ...(after !== undefined ? { after } : {}),
      });
      for (const item of flags.items) read.add(Number(item.key.slice(readPrefix(inbox).length)));
      after = flags.next ?? undefined;
      if (after === undefined) break;
    }
    return read;
  }
}
