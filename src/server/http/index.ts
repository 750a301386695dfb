export { type ClientCertMode, ClientTls, type ClientTlsFiles, clientCertModes } from "../client-tls.js";
export { type ConnectionLimits, ConnectionRefusals, defaultConnectionLimits } from "../connection-gate.js";
export { buildHttpApp, type HttpAppOptions, type Readiness } from "./app.js";
export { type ErrorBody, errorBody, httpStatusOf } from "./error-status.js";
