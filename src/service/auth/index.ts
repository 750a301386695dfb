// The public surface of the auth part: commands and their encoding, the state machine part, the
// permission model, principals, and the guard that checks them.
export {
  type AuthCommand,
  burstMax,
  certNameBytesMax,
  certNamePattern,
  decodeAuthCommand,
  encodeAuthCommand,
  type RateLimit,
  requestsPerSecondMax,
  roleNameBytesMax,
  type TokenInput,
  tokenIdPattern,
} from "./auth-command.js";
export { type AuthFailures, AuthGuard, type AuthGuardOptions, unauthenticated } from "./auth-guard.js";
export {
  type AuthResult,
  applyAuth,
  authEnabled,
  type CertBinding,
  getCertBinding,
  getRole,
  getRoleRate,
  getToken,
  listCertBindings,
  listRoles,
  listTokens,
  type RoleRecord,
  type TokenRecord,
} from "./auth-state-machine.js";
export { authNeeds, clusterAdminNeeds, kvNeeds, streamNeeds } from "./command-needs.js";
export {
  adminGrants,
  adminRoleName,
  firstUncovered,
  formatGrant,
  formatNeed,
  type Grant,
  grantCovers,
  grantsPerRoleMax,
  type Need,
  type Permission,
  parseGrant,
  type ResourceKind,
  streamPatternMatches,
} from "./permissions.js";
export {
  anonymous,
  currentPrincipal,
  decodePrincipal,
  encodePrincipal,
  type Principal,
  runAs,
  system,
} from "./principal.js";
export { type RateLimitCounts, RateLimiter, type RateLimiterOptions } from "./rate-limiter.js";
export { hashSecret, newToken, parseToken } from "./token-secret.js";
