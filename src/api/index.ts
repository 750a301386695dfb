// The public API's shapes: the nodes' HTTP API (/v1) and the local supervisor's control API.
export * from "./control-api.js";
export * from "./http-api.js";
