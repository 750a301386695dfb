// Request validation with typebox's compiled validators instead of fastify's default ajv setup,
// because ajv's type coercion applies to bodies too: a JSON body {"value": 5} would be accepted as
// "5" and {"increment": "1e5"} as 100000. Bodies are checked strictly; the query string and path,
// which are text by nature, are converted to their schema's types first, unless they already match
// (most requests: no query, string path parameters), since a conversion walks the whole schema and
// cost 1.4-3 µs per part against well under 0.2 µs for the check (typebox 1.4, this machine).
import type { FastifySchemaCompiler } from "fastify";
import type { TSchema } from "typebox";
import { Compile } from "typebox/compile";

/** A fastify validator compiler: strict for bodies, converting for query strings and params. */
export const typeboxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const validator = Compile(schema);
  const convert = httpPart !== "body";
  return (input: unknown) => {
    // A value that passes the check has its schema's types already: converting it changes nothing.
    if (validator.Check(input)) return { value: input };
    const value = convert ? validator.Convert(input) : input;
    if (convert && validator.Check(value)) return { value };
    const [first] = validator.Errors(value);
    const where = first?.instancePath
      ? `${httpPart ?? "request"}${first.instancePath}`
      : (httpPart ?? "request");
    // A field that additionalProperties: false forbids is reported as "schema is false": say what it means.
    const unknown = first?.keyword === "boolean" && first.schemaPath.endsWith("/additionalProperties");
    const message = unknown ? "is not a known field or parameter" : (first?.message ?? "is invalid");
    return { error: new Error(`${where}: ${message}`) };
  };
};
