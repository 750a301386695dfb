// Authentication turned on in a test's state as a node turns it on: the `enable` command applied
// with a fresh admin token (its secret hashed), whose text the test then presents.
import { applyAuth, hashSecret, newToken } from "../../src/service/auth/index.js";
import type { StateWriter } from "../../src/service/state.js";

/** Turns authentication on in `state`; resolves with the bootstrap admin token's text. */
export async function enableAuth(state: StateWriter): Promise<string> {
  const admin = newToken();
  const result = applyAuth(
    state,
    { type: "enable", token: { id: admin.id, role: "admin", ...(await hashSecret(admin.secret)), ttlMs: 0 } },
    0,
  );
  if (!result.ok) throw new Error(`enable refused: ${result.message}`);
  return admin.text;
}
