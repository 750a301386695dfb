// Builds an OpenAPI 3.1 document from the schemas routes are registered with, so the document
// cannot drift from what the server validates.
import type { RouteOptions } from "fastify";

interface Operation {
  summary?: string;
  parameters: unknown[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
}

/** Collects routes (from fastify's onRoute hook) into an OpenAPI document. */
export class OpenApiCollector {
  readonly #title: string;
  readonly #version: string;
  readonly #paths = new Map<string, Record<string, Operation>>();

  /** Creates a collector for an API with this title and version. */
  constructor(title: string, version: string) {
    this.#title = title;
    this.#version = version;
  }

  /** Records one route; HEAD routes and routes whose schema says `hide` are left out. */
  add(route: RouteOptions): void {
    const schema: Record<string, unknown> = { ...route.schema };
    if (schema["hide"] === true) return;
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((m) => m !== "HEAD");
    const path = route.url.replace(/\*$/, "{key}").replace(/:([A-Za-z_]+)/g, "{$1}");
    const parameters: unknown[] = [];
    if (route.url.endsWith("*"))
      parameters.push({ name: "key", in: "path", required: true, schema: { type: "string" } });
    for (const [name, param] of Object.entries(propertiesOf(schema["params"]))) {
      if (name !== "*") parameters.push({ name, in: "path", required: true, schema: param });
    }
    const queryRequired = requiredOf(schema["querystring"]);
    for (const [name, param] of Object.entries(propertiesOf(schema["querystring"]))) {
      parameters.push({ name, in: "query", required: queryRequired.includes(name), schema: param });
    }
    const operation: Operation = {
      ...(typeof schema["summary"] === "string" ? { summary: schema["summary"] } : {}),
      parameters,
      responses: responsesOf(schema["response"]),
    };
    if (schema["body"] !== undefined) {
      operation.requestBody = { required: true, content: { "application/json": { schema: schema["body"] } } };
    }
    const entry = this.#paths.get(path) ?? {};
    for (const method of methods) entry[method.toLowerCase()] = operation;
    this.#paths.set(path, entry);
  }

  /** The OpenAPI document. */
  document(): unknown {
    return {
      openapi: "3.1.0",
      info: { title: this.#title, version: this.#version },
      paths: Object.fromEntries([...this.#paths].sort(([a], [b]) => a.localeCompare(b))),
      components: {
        schemas: {
          Error: {
            type: "object",
            required: ["error"],
            properties: {
              error: {
                type: "object",
                required: ["code", "message"],
                properties: { code: { type: "string" }, message: { type: "string" } },
              },
            },
          },
        },
      },
    };
  }
}

function propertiesOf(schema: unknown): Record<string, unknown> {
  if (typeof schema !== "object" || schema === null || !("properties" in schema)) return {};
  const properties = (schema as { properties: unknown }).properties;
  return typeof properties === "object" && properties !== null ? (properties as Record<string, unknown>) : {};
}

function requiredOf(schema: unknown): string[] {
  if (typeof schema !== "object" || schema === null || !("required" in schema)) return [];
  const required = (schema as { required: unknown }).required;
  return Array.isArray(required) ? required.filter((r): r is string => typeof r === "string") : [];
}

function responsesOf(response: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof response === "object" && response !== null) {
    for (const [status, schema] of Object.entries(response)) {
      out[status] = { description: `HTTP ${status}`, content: { "application/json": { schema } } };
    }
  }
  if (out["200"] === undefined) out["200"] = { description: "OK" };
  out["default"] = {
    description: "An error",
    content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
  };
  return out;
}

declare module "fastify" {
  interface FastifySchema {
    /** A one-line description of the route for the OpenAPI document. */
    summary?: string;
    /** Leave the route out of the OpenAPI document. */
    hide?: boolean;
  }
}
