// The request validator compiler, called as fastify calls it: query strings and path parameters are
// converted to their schema's types (and left alone when they already match), bodies never are, and
// a failure names the part and field.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Type } from "typebox";
import { typeboxValidatorCompiler } from "../../../../src/server/http/validator.js";

const Query = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1 })), mode: Type.Optional(Type.Literal("stale")) },
  { additionalProperties: false },
);

function validate(httpPart: "querystring" | "body", input: unknown) {
  const compiled = typeboxValidatorCompiler({ schema: Query, httpPart, method: "GET", url: "/" });
  return compiled(input) as { value?: unknown; error?: Error };
}

describe("the request validator", () => {
  it("converts query text to the schema's types", () => {
    assert.deepEqual(validate("querystring", { limit: "5", mode: "stale" }).value, {
      limit: 5,
      mode: "stale",
    });
  });

  it("passes a query that already matches as it is", () => {
    const input = { mode: "stale" };
    assert.equal(validate("querystring", input).value, input);
    assert.deepEqual(validate("querystring", {}).value, {});
  });

  it("refuses query text that does not convert, naming the field", () => {
    assert.match(validate("querystring", { limit: "five" }).error?.message ?? "", /^querystring\/limit: /);
    assert.match(validate("querystring", { limit: "0" }).error?.message ?? "", /^querystring\/limit: /);
  });

  it("never converts a body", () => {
    assert.match(validate("body", { limit: "5" }).error?.message ?? "", /^body\/limit: /);
    assert.deepEqual(validate("body", { limit: 5 }).value, { limit: 5 });
  });

  it("names an unknown field as such", () => {
    assert.equal(
      validate("querystring", { limt: "5" }).error?.message,
      "querystring/limt: is not a known field or parameter",
    );
  });
});
