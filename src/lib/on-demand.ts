import { createRequire } from 'node:module';
import type HandlebarsPackage from 'handlebars';
import type * as Re2jsPackage from 're2js';

/**
 * Packages only some configs need, loaded synchronously on first use: handlebars (webhook and
 * http templates) and re2js (patterns). Config checks are synchronous (zod), so an import()
 * would not do; an agent whose config has neither never runs their code. The bundle
 * (scripts/bundle.ts `requireOnDemand`) drops this `require` so that esbuild bundles the two
 * packages and runs each only when its loader is first called.
 */
const require = createRequire(import.meta.url);

export const loadHandlebars = (): typeof HandlebarsPackage => require('handlebars') as typeof HandlebarsPackage;
export const loadRe2js = (): typeof Re2jsPackage => require('re2js') as typeof Re2jsPackage;
