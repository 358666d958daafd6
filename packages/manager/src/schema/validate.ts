import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { ErrorCode, LacewingError } from "@lacewing/common";
import type { Static, TSchema } from "typebox";

/** Where an input came from: a JSON body, or strings of a query or path, which are coerced to the schema's types. */
export type InputPart = "body" | "querystring" | "params";

// ajv-formats is CommonJS with the plugin as its default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function newAjv(coerceTypes: boolean): Ajv {
  // Unknown keys fail (additionalProperties: false) rather than being dropped
  // silently, which is what fastify's own ajv settings would do.
  const ajv = new Ajv({ allErrors: false, coerceTypes, useDefaults: true, removeAdditional: false, strict: false, verbose: true });
  addFormats(ajv);
  return ajv;
}

const AJV = { json: newAjv(false), strings: newAjv(true) };
const compiled = { json: new WeakMap<object, ValidateFunction>(), strings: new WeakMap<object, ValidateFunction>() };

/** The compiled validator of `schema` for inputs from `part` (compiled once per schema and kind). */
export function validatorOf(schema: TSchema, part: InputPart): ValidateFunction {
  const kind = part === "body" ? "json" : "strings";
  let validate = compiled[kind].get(schema);
  if (validate === undefined) {
    validate = AJV[kind].compile(schema);
    compiled[kind].set(schema, validate);
  }
  return validate;
}

/**
 * Checks `value` against `schema` (filling in defaults) and returns it typed;
 * a mismatch is an invalid-argument LacewingError naming the field.
 */
export function validateInput<S extends TSchema>(schema: S, value: unknown, part: InputPart = "body"): Static<S> {
  const validate = validatorOf(schema, part);
  if (validate(value)) return value as Static<S>;
  throw inputErrorOf(validate.errors ?? [], schema, part);
}

/** The first schema error as the API's error: `field: message`, with `field` a dotted path into the input. */
export function inputErrorOf(errors: readonly ErrorObject[], schema: TSchema, part: InputPart): LacewingError {
  const error = errors[0];
  if (error === undefined) return invalidField(part === "body" ? "body" : part, "invalid");
  const field = fieldOf(error, schema, part);
  return invalidField(field, messageOf(error));
}

/** A request the caller must fix; `field` names the offending input. */
export function invalidField(field: string, message: string): LacewingError {
  return new LacewingError(ErrorCode.managerInvalidArgument, "invalid_argument", `${field}: ${message}`, { details: { field } });
}

/**
 * The field an error is about: the path to it, as far as the schema names
 * properties. A bad value inside a map or list is reported against the map
 * or list (`args.headers`, `args.urls`), the way a caller thinks of it; an
 * unknown or missing key is named itself.
 */
function fieldOf(error: ErrorObject, schema: TSchema, part: InputPart): string {
  const segments = error.instancePath
    .split("/")
    .slice(1)
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
  const named: string[] = [];
  let node: unknown = schema;
  for (const segment of segments) {
    const properties = (node as { properties?: Record<string, unknown> } | undefined)?.properties;
    if (properties === undefined || !(segment in properties)) break;
    named.push(segment);
    node = properties[segment];
  }
  const extra =
    error.keyword === "additionalProperties"
      ? (error.params as { additionalProperty: string }).additionalProperty
      : error.keyword === "required" && named.length === segments.length
        ? (error.params as { missingProperty: string }).missingProperty
        : undefined;
  if (extra !== undefined && named.length === segments.length) named.push(extra);
  if (named.length > 0) return named.join(".");
  return part === "body" ? "body" : part === "params" ? "path" : "query";
}

function messageOf(error: ErrorObject): string {
  const schema = error.parentSchema as { description?: string; enum?: unknown[] } | undefined;
  switch (error.keyword) {
    case "additionalProperties":
      return "unknown field";
    case "required":
      return "is required";
    case "enum":
      return `must be one of ${(schema?.enum ?? []).join(", ")}`;
    case "pattern":
    case "format":
    case "minimum":
    case "maximum":
      if (schema?.description !== undefined) return `must be ${schema.description}`;
      return error.message ?? "is invalid";
    case "type":
      return `must be ${typeWord((error.params as { type: string }).type)}`;
    default:
      return error.message ?? "is invalid";
  }
}

function typeWord(type: string): string {
  if (type === "object") return "an object";
  if (type === "array") return "a list";
  if (type === "integer") return "a positive integer";
  return `a ${type}`;
}
