// Development certificates for node-to-node mutual TLS: a throw-away cluster CA, one certificate
// per node (named `node-<id>`, the identity the transport checks) and client certificates for
// tools. Never for production: the CA key sits next to the certificates it signed.
import { createPublicKey, generateKeyPair, randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { Command } from "commander";
import forge from "node-forge";

const generateKeyPairAsync = promisify(generateKeyPair);
const VALIDITY_DAYS = 5 * 365;
/** A certificate closer than this to its end is replaced rather than reused. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

/** A certificate and its private key, both PEM. */
export interface PemPair {
  readonly cert: string;
  readonly key: string;
}

/** What a certificate is for: `node` may serve and dial (server and client auth), `client` only dials. */
export type CertRole = "node" | "client";

/** The subject and names of a certificate to issue. */
export interface CertRequest {
  readonly commonName: string;
  readonly role: CertRole;
  /** DNS subjectAltNames besides the common name. */
  readonly dnsNames?: readonly string[];
  /** IP subjectAltNames. */
  readonly ipAddresses?: readonly string[];
  /** A PEM RSA private key to certify instead of generating a new one. */
  readonly privateKey?: string;
}

/**
 * Generates an RSA-2048 key pair with node:crypto (forge 1.x cannot sign with ECDSA), or derives
 * the public half of `privateKey` when one is given (tests reuse a key: generating one takes ~0.5 s).
 */
async function newKeyPair(privateKey?: string): Promise<{ publicKey: string; privateKey: string }> {
  if (privateKey !== undefined) {
    const publicKey = createPublicKey(privateKey).export({ type: "spki", format: "pem" }).toString();
    return { publicKey, privateKey };
  }
  return generateKeyPairAsync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
  });
}

/** A random positive serial number, as forge wants it (hex, top bit clear). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString("hex");
}

function validity(cert: forge.pki.Certificate): void {
  const now = Date.now();
  // Backdated a little so a peer whose clock lags does not see a certificate from the future.
  cert.validity.notBefore = new Date(now - 3600 * 1000);
  cert.validity.notAfter = new Date(now + VALIDITY_DAYS * 24 * 3600 * 1000);
}

/** Creates a self-signed development CA named `commonName` (with a new key unless `privateKey` is given). */
export async function createDevCa(
  commonName = "Cairn development CA",
  privateKey?: string,
): Promise<PemPair> {
  const keys = await newKeyPair(privateKey);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicKey);
  cert.serialNumber = serialNumber();
  validity(cert);
  const subject = [
    { shortName: "CN", value: commonName },
    { shortName: "O", value: "Cairn development" },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keys.privateKey), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.privateKey };
}

/** Issues a certificate for `request`, signed by `ca`. */
export async function issueCertificate(ca: PemPair, request: CertRequest): Promise<PemPair> {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const keys = await newKeyPair(request.privateKey);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicKey);
  cert.serialNumber = serialNumber();
  validity(cert);
  cert.setSubject([
    { shortName: "CN", value: request.commonName },
    { shortName: "O", value: "Cairn development" },
  ]);
  cert.setIssuer(caCert.subject.attributes);
  const dnsNames = [request.commonName, ...(request.dnsNames ?? [])];
  const altNames = [
    // forge's SAN types: 2 = dNSName, 7 = iPAddress.
    ...[...new Set(dnsNames)].map((value) => ({ type: 2, value })),
    ...(request.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: request.role === "node", clientAuth: true },
    { name: "subjectAltName", altNames },
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.privateKey };
}

/** What {@link ensureDevCerts} should make. */
export interface DevCertsOptions {
  /** Where the files live, e.g. `.cairn/dev/certs`. */
  readonly dir: string;
  /** Node certificate names, e.g. `node-1`; each also gets localhost and loopback SANs. */
  readonly nodeNames: readonly string[];
  /** Client certificate names for tools; defaults to `cairn-client`. */
  readonly clientNames?: readonly string[];
  /** Extra DNS names or IPs to put in every node certificate (e.g. a container hostname). */
  readonly extraHosts?: readonly string[];
}

/** Paths of one certificate and its key. */
export interface CertPaths {
  readonly certPath: string;
  readonly keyPath: string;
}

/** What {@link ensureDevCerts} left on disk, and what it had to create. */
export interface DevCertsResult {
  readonly caCertPath: string;
  readonly nodes: ReadonlyMap<string, CertPaths>;
  readonly clients: ReadonlyMap<string, CertPaths>;
  /** Names (`ca`, node and client names) generated on this run; the rest were reused. */
  readonly created: readonly string[];
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const IP_PATTERN = /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:]*)$/;

/**
 * Makes sure `dir` holds a development CA and a certificate for every node and client name,
 * reusing what a previous run left (so a restarted local cluster keeps trusting itself) and
 * creating what is missing, expired or not signed by the CA on disk. Private keys are written with
 * mode 0600, the directory with 0700; every file is written to a temporary name and renamed.
 */
export async function ensureDevCerts(options: DevCertsOptions): Promise<DevCertsResult> {
  const clientNames = options.clientNames ?? ["cairn-client"];
  for (const name of [...options.nodeNames, ...clientNames]) {
    if (!NAME_PATTERN.test(name) || name === "ca") throw new Error(`bad certificate name "${name}"`);
  }
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const created: string[] = [];
  const paths = (name: string): CertPaths => ({
    certPath: join(options.dir, `${name}.crt`),
    keyPath: join(options.dir, `${name}.key`),
  });

  let ca = await readPair(paths("ca"));
  let caFresh = false;
  if (ca === undefined || !isUsable(ca.cert, undefined)) {
    ca = await createDevCa();
    await writePair(paths("ca"), ca);
    created.push("ca");
    caFresh = true;
  }
  const extraHosts = options.extraHosts ?? [];
  const issue = async (name: string, role: CertRole): Promise<CertPaths> => {
    const where = paths(name);
    const existing = caFresh ? undefined : await readPair(where);
    if (existing === undefined || !isUsable(existing.cert, ca)) {
      const pair = await issueCertificate(ca, {
        commonName: name,
        role,
        dnsNames: role === "node" ? ["localhost", ...extraHosts.filter((h) => !IP_PATTERN.test(h))] : [],
        ipAddresses:
          role === "node" ? ["127.0.0.1", "::1", ...extraHosts.filter((h) => IP_PATTERN.test(h))] : [],
      });
      await writePair(where, pair);
      created.push(name);
    }
    return where;
  };
  const nodes = new Map<string, CertPaths>();
  for (const name of options.nodeNames) nodes.set(name, await issue(name, "node"));
  const clients = new Map<string, CertPaths>();
  for (const name of clientNames) clients.set(name, await issue(name, "client"));
  return { caCertPath: paths("ca").certPath, nodes, clients, created };
}

/** Reads a certificate and key, or undefined when either is missing. */
async function readPair(where: CertPaths): Promise<PemPair | undefined> {
  try {
    const [cert, key] = await Promise.all([
      readFile(where.certPath, "utf8"),
      readFile(where.keyPath, "utf8"),
    ]);
    return { cert, key };
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** Whether a PEM certificate parses, is valid for a while yet, and (given `ca`) was signed by it. */
function isUsable(certPem: string, ca: PemPair | undefined): boolean {
  let cert: forge.pki.Certificate;
  try {
    cert = forge.pki.certificateFromPem(certPem);
  } catch {
    return false;
  }
  if (cert.validity.notAfter.getTime() - Date.now() < RENEW_BEFORE_MS) return false;
  if (ca === undefined) return true;
  try {
    return forge.pki.certificateFromPem(ca.cert).verify(cert);
  } catch {
    return false;
  }
}

async function writePair(where: CertPaths, pair: PemPair): Promise<void> {
  await writeAtomically(where.keyPath, pair.key, 0o600);
  await writeAtomically(where.certPath, pair.cert, 0o644);
}

async function writeAtomically(path: string, text: string, mode: number): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, text, { mode });
  // writeFile's mode is filtered by the umask; the key must be 0600 whatever the umask says.
  await chmod(temporary, mode);
  await rename(temporary, path);
}

function isNotFound(error: unknown): boolean {
  return typeof error === "object" && error !== null && "code" in error && error.code === "ENOENT";
}

/** Reads the PEM files of a node for the transport: the CA, its certificate and its key. */
export async function readNodeTls(
  caCertPath: string,
  paths: CertPaths,
): Promise<{ ca: string; cert: string; key: string }> {
  const [ca, cert, key] = await Promise.all([
    readFile(caCertPath, "utf8"),
    readFile(paths.certPath, "utf8"),
    readFile(paths.keyPath, "utf8"),
  ]);
  // A key readable by others is no secret: refuse to use one (the dev files are ours to check).
  const keyMode = (await stat(paths.keyPath)).mode & 0o077;
  if (keyMode !== 0) throw new Error(`private key ${paths.keyPath} is readable by group or others`);
  return { ca, cert, key };
}

/**
 * The `dev-certs` subcommand: creates (or reuses) development certificates for `--nodes` nodes
 * named node-1..node-N and prints where they are. Not yet registered in main.ts; the CLI owner adds
 * it with `program.addCommand(devCertsCommand())`.
 */
export function devCertsCommand(
  write: (text: string) => void = (text) => process.stdout.write(text),
): Command {
  const command = new Command("dev-certs")
    .description("create or reuse development mTLS certificates (a local CA, node-1..N and a client)")
    .option("--dir <path>", "where to keep them", join(".cairn", "dev", "certs"))
    .option("--nodes <count>", "how many node certificates", "3")
    .option("--host <name...>", "extra DNS names or IPs for every node certificate")
    .option("--client <name...>", "client certificates to issue (for --client-tls-ca); default cairn-client");
  command.action(async () => {
    const options = command.opts<{ dir: string; nodes: string; host?: string[]; client?: string[] }>();
    const count = Number(options.nodes);
    if (!Number.isSafeInteger(count) || count < 1 || count > 99) {
      throw new Error(`--nodes must be an integer from 1 to 99, got "${options.nodes}"`);
    }
    const result = await ensureDevCerts({
      dir: options.dir,
      nodeNames: Array.from({ length: count }, (_, i) => `node-${i + 1}`),
      extraHosts: options.host ?? [],
      ...(options.client !== undefined ? { clientNames: options.client } : {}),
    });
    write(`CA:      ${result.caCertPath}\n`);
    for (const [name, paths] of [...result.nodes, ...result.clients]) {
      write(`${name.padEnd(8)} ${paths.certPath}  ${paths.keyPath}\n`);
    }
    write(
      result.created.length === 0
        ? "reused existing certificates\n"
        : `created: ${result.created.join(", ")}\n`,
    );
  });
  return command;
}
