// Request validation with typebox's compiled validators instead of fastify's default ajv setup,
// because ajv's type coercion applies to bodies too: a JSON body {"value": 5} would be accepted as
// "5" and {"increment": "1e5"} as 100000. Bodies are checked strictly; the query string and path,
// which are text by nature, are converted to their schema's types first.
import type { FastifySchemaCompiler } from "fastify";
import type { TSchema } from "typebox";
import { Compile } from "typebox/compile";

/** A fastify validator compiler: strict for bodies, converting for query strings and params. */
export const typeboxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const validator = Compile(schema);
  const convert = httpPart !== "body";
  return (input: unknown) => {
    const value = convert ? validator.Convert(input) : input;
    if (validator.Check(value)) return { value };
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
