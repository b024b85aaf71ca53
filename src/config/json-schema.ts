import { z } from 'zod';
import { jsonForms } from './fields.js';
import { ENV_REFERENCE, FILE_REFERENCE } from './refs.js';
import { topLevelSchema } from './schema.js';
import { commonSchema, type StepEntryType } from './step-entries.js';

type JsonSchema = Record<string, unknown>;

/** A string holding `${env:NAME}` or `${file:/path}`: the loader resolves it before checking the field. */
const REFERENCE: JsonSchema = {
  type: 'string',
  pattern: `\\$\\{(?:${ENV_REFERENCE.source.slice(1, -1)}|${FILE_REFERENCE.source.slice(1, -1)})\\}`,
  description: 'a ${env:NAME} or ${file:/path} reference, resolved when the config is loaded',
};

/**
 * Input form (what a file holds, defaults shown), with the fields zod cannot show in JSON
 * (durations, listen addresses) replaced by their jsonForms entry.
 */
function fromZod(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, {
    io: 'input',
    target: 'draft-7',
    unrepresentable: 'any',
    override: ({ zodSchema, jsonSchema }) => {
      const form = jsonForms.get(zodSchema as unknown as z.ZodType);
      if (!form) return;
      for (const key of Object.keys(jsonSchema)) if (key !== 'default') delete (jsonSchema as JsonSchema)[key];
      Object.assign(jsonSchema, form);
    },
  }) as JsonSchema;
  delete json.$schema;
  return json;
}

function isStringConstraint(node: JsonSchema): boolean {
  const values = (node.enum as unknown[] | undefined) ?? ('const' in node ? [node.const] : undefined);
  if (values) return values.every((value) => typeof value === 'string');
  if (node.type === 'string') return ['pattern', 'minLength', 'maxLength', 'format'].some((key) => key in node);
  return Array.isArray(node.anyOf) && (node.anyOf as JsonSchema[]).some(isStringConstraint);
}

/**
 * References are resolved before validation, so a string field with a pattern or a choice
 * of values also takes a reference. A number or a boolean does not: the loader checks the
 * resolved text, which is never a number or a boolean.
 */
function allowReferences(schema: JsonSchema): JsonSchema {
  if (isStringConstraint(schema)) {
    const { description, default: fallback, ...rest } = schema;
    return { ...(description === undefined ? {} : { description }), ...(fallback === undefined ? {} : { default: fallback }), anyOf: [rest, { $ref: '#/definitions/reference' }] };
  }
  const copy = { ...schema };
  for (const key of ['properties', 'patternProperties']) {
    if (copy[key]) copy[key] = Object.fromEntries(Object.entries(copy[key] as JsonSchema).map(([name, value]) => [name, allowReferences(value as JsonSchema)]));
  }
  for (const key of ['anyOf', 'oneOf', 'allOf']) if (Array.isArray(copy[key])) copy[key] = (copy[key] as JsonSchema[]).map(allowReferences);
  for (const key of ['items', 'additionalProperties']) if (typeof copy[key] === 'object') copy[key] = allowReferences(copy[key] as JsonSchema);
  return copy;
}

/** One alternative of `steps:`: the common keys and exactly this type's key. */
function stepAlternative(stepType: StepEntryType): JsonSchema {
  const common = fromZod(commonSchema);
  return {
    title: `${stepType.type} step`,
    type: 'object',
    properties: { ...(common.properties as JsonSchema), [stepType.type]: fromZod(stepType.schema) },
    required: ['name', stepType.type],
    additionalProperties: false,
  };
}

/**
 * The JSON Schema of a config file, from the same zod schemas and step type registry the
 * loader checks with. Some checks only the loader makes: unique step names, `after:` naming
 * a step and forming no cycle, one signal target, the longest duration, URL schemes, signal
 * names, ports (docs/config.md lists them; test/unit/config-json-schema.test.ts holds them).
 */
export function configJsonSchema(stepTypes: readonly StepEntryType[]): JsonSchema {
  const top = fromZod(topLevelSchema);
  const properties = top.properties as JsonSchema;
  properties.steps = {
    description: 'the plan: each step has a name and exactly one step type',
    type: 'array',
    default: [],
    items: { oneOf: stepTypes.map(stepAlternative) },
  };
  return {
    // Draft 7: what yaml-language-server (editors) and ajv's default class read.
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'preemptd config',
    ...allowReferences(top),
    definitions: { reference: REFERENCE },
  };
}
