// `cairn auth ...`: turn authentication on or off, manage roles, tokens and certificate bindings over the HTTP API
// (docs/security.md). The caller's token comes from --token or CAIRN_TOKEN.
import type { Command } from "commander";
import type { AuthTokenCreated } from "../api/index.js";
import { CairnClient } from "../client/index.js";

/** What the auth commands need from the CLI around them. */
export interface AuthCommandsContext {
  readonly clientOptions: (flag: string | undefined) => { endpoints: string[]; token?: string };
  readonly print: (value: unknown) => void;
}

interface Common {
  endpoints?: string;
  token?: string;
}

/** Registers `cairn auth`. */
export function registerAuthCommands(program: Command, context: AuthCommandsContext): void {
  const clientOf = (options: Common) => {
    const base = context.clientOptions(options.endpoints);
    return new CairnClient(options.token !== undefined ? { ...base, token: options.token } : base);
  };
  const withCommon = (command: Command) =>
    command
      .option("--endpoints <urls>", "comma-separated node URLs")
      .option("--token <token>", "the caller's token (default: CAIRN_TOKEN)");
  const auth = program.command("auth").description("tokens, roles and authentication (docs/security.md)");
  withCommon(
    auth.command("enable").description("turn authentication on; prints the admin token once"),
  ).action(async (options: Common) => {
    const created = (await clientOf(options).request("POST", "/v1/auth/enable")) as AuthTokenCreated;
    context.print(`authentication is on; admin token (shown once, keep it safe):\n${created.token}`);
  });
  withCommon(auth.command("disable").description("turn authentication off")).action(async (options: Common) =>
    context.print(await clientOf(options).request("POST", "/v1/auth/disable")),
  );
  withCommon(auth.command("whoami").description("show whether authentication is on and who you are")).action(
    async (options: Common) => context.print(await clientOf(options).request("GET", "/v1/auth/whoami")),
  );
  const token = auth.command("token").description("create, list and revoke tokens");
  withCommon(token.command("create").description("create a token; prints its secret once"))
    .requiredOption("--role <name>", "the token's role")
    .option("--ttl-ms <ms>", "lifetime in milliseconds (default: until revoked)")
    .action(async (options: Common & { role: string; ttlMs?: string }) => {
      const body = {
        role: options.role,
        ...(options.ttlMs !== undefined ? { ttlMs: Number(options.ttlMs) } : {}),
      };
      context.print(await clientOf(options).request("POST", "/v1/auth/tokens", body));
    });
  withCommon(token.command("list").description("list tokens (never their secrets)")).action(
    async (options: Common) => context.print(await clientOf(options).request("GET", "/v1/auth/tokens")),
  );
  withCommon(token.command("revoke <id>").description("revoke a token on every node")).action(
    async (id: string, options: Common) =>
      context.print(await clientOf(options).request("DELETE", `/v1/auth/tokens/${encodeURIComponent(id)}`)),
  );
  const role = auth.command("role").description("define roles: grants of read, write or admin");
  withCommon(role.command("put <name>").description("create or replace a role"))
    .requiredOption(
      "--grant <grant...>",
      "grants as <read|write|admin>:<key|stream|cluster>[:<pattern>], e.g. read:key:app/",
    )
    .action(async (name: string, options: Common & { grant: string[] }) =>
      context.print(
        await clientOf(options).request("PUT", `/v1/auth/roles/${encodeURIComponent(name)}`, {
          grants: options.grant,
        }),
      ),
    );
  withCommon(role.command("rate <name>").description("set the rate limit of each token of a role"))
    .requiredOption(
      "--requests-per-second <n>",
      "requests per second per token, over every protocol (0: no limit)",
    )
    .option("--burst <n>", "requests an idle token may make at once (default: one second's worth)")
    .action(async (name: string, options: Common & { requestsPerSecond: string; burst?: string }) =>
      context.print(
        await clientOf(options).request("PUT", `/v1/auth/roles/${encodeURIComponent(name)}/rate`, {
          requestsPerSecond: Number(options.requestsPerSecond),
          ...(options.burst !== undefined ? { burst: Number(options.burst) } : {}),
        }),
      ),
    );
  withCommon(role.command("list").description("list roles and their grants")).action(
    async (options: Common) => context.print(await clientOf(options).request("GET", "/v1/auth/roles")),
  );
  withCommon(role.command("delete <name>").description("remove a role no token or certificate holds")).action(
    async (name: string, options: Common) =>
      context.print(await clientOf(options).request("DELETE", `/v1/auth/roles/${encodeURIComponent(name)}`)),
  );
  const cert = auth
    .command("cert")
    .description("bind client certificate names (subject CN) to roles, for --client-tls-ca");
  withCommon(cert.command("bind <name>").description("bind a certificate name to a role"))
    .requiredOption("--role <name>", "the role its holder acts with")
    .action(async (name: string, options: Common & { role: string }) =>
      context.print(
        await clientOf(options).request("PUT", `/v1/auth/certs/${encodeURIComponent(name)}`, {
          role: options.role,
        }),
      ),
    );
  withCommon(
    cert.command("unbind <name>").description("unbind a certificate name: it may do nothing"),
  ).action(async (name: string, options: Common) =>
    context.print(await clientOf(options).request("DELETE", `/v1/auth/certs/${encodeURIComponent(name)}`)),
  );
  withCommon(cert.command("list").description("list certificate names and their roles")).action(
    async (options: Common) => context.print(await clientOf(options).request("GET", "/v1/auth/certs")),
  );
}
