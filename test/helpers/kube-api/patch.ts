/**
 * The three patch types kubectl and client libraries send to the API server: JSON merge patch
 * (RFC 7386), JSON patch (RFC 6902) and strategic merge patch, applied as the API server does
 * for the fields of Nodes, Pods and Events that preemptd and kubectl touch.
 */

type Json = unknown;
type JsonObject = Record<string, Json>;

export class PatchError extends Error {}

function isObject(value: Json): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 7386: objects merge key by key, null deletes, anything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/**
 * Lists the API server merges by a key under a strategic merge patch (patchStrategy=merge in
 * the Kubernetes types); every other list, spec.taints among them, is replaced whole.
 */
const MERGE_KEYS: Record<string, string> = {
  'status.conditions': 'type',
  'status.addresses': 'address',
  'metadata.ownerReferences': 'uid',
  'spec.containers': 'name',
  'spec.volumes': 'name',
};

/** Strategic merge patch: a merge patch whose keyed lists merge by key and honour `$patch: delete`. */
export function strategicMergePatch(target: Json, patch: Json, path = ''): Json {
  if (!isObject(patch)) return structuredClone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _, ...rest } = patch;
    return structuredClone(rest);
  }
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) {
      if (key.startsWith('$setElementOrder/') || key === '$retainKeys') continue;
      throw new PatchError(`unknown patch directive ${key}`);
    }
    const fieldPath = path ? `${path}.${key}` : key;
    const mergeKey = MERGE_KEYS[fieldPath];
    if (value === null) delete result[key];
    else if (mergeKey && Array.isArray(value)) result[key] = mergeKeyedList(result[key], value, mergeKey, fieldPath);
    else result[key] = strategicMergePatch(result[key], value, fieldPath);
  }
  return result;
}

function mergeKeyedList(target: Json, patch: Json[], mergeKey: string, path: string): Json[] {
  const merged = Array.isArray(target) ? [...target] : [];
  for (const item of patch) {
    if (!isObject(item) || !(mergeKey in item)) throw new PatchError(`${path}: every item of a merge patch needs "${mergeKey}"`);
    const at = merged.findIndex((existing) => isObject(existing) && existing[mergeKey] === item[mergeKey]);
    if (item.$patch === 'delete') {
      if (at >= 0) merged.splice(at, 1);
    } else if (at >= 0) merged[at] = strategicMergePatch(merged[at], item, path);
    else merged.push(structuredClone(item));
  }
  return merged;
}

/** RFC 6901 pointer segments. */
function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`"${path}" is not a JSON pointer`);
  return path.slice(1).split('/').map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function parentOf(document: Json, segments: string[], path: string): { parent: JsonObject | Json[]; key: string } {
  let parent: Json = document;
  for (const segment of segments.slice(0, -1)) {
    parent = Array.isArray(parent) ? parent[Number(segment)] : isObject(parent) ? parent[segment] : undefined;
    if (parent === undefined) throw new PatchError(`doc is missing path: "${path}"`);
  }
  if (!Array.isArray(parent) && !isObject(parent)) throw new PatchError(`doc is missing path: "${path}"`);
  return { parent, key: segments.at(-1)! };
}

function read(document: Json, path: string): Json {
  let at: Json = document;
  for (const segment of pointer(path)) {
    at = Array.isArray(at) ? at[Number(segment)] : isObject(at) ? at[segment] : undefined;
    if (at === undefined) throw new PatchError(`doc is missing path: "${path}"`);
  }
  return at;
}

function remove(document: Json, path: string): Json {
  const { parent, key } = parentOf(document, pointer(path), path);
  if (Array.isArray(parent)) {
    const index = Number(key);
    if (!(index >= 0 && index < parent.length)) throw new PatchError(`doc is missing path: "${path}"`);
    return parent.splice(index, 1)[0];
  }
  if (!(key in parent)) throw new PatchError(`doc is missing path: "${path}"`);
  const value = parent[key];
  delete parent[key];
  return value;
}

function add(document: Json, path: string, value: Json, replace: boolean): Json {
  const segments = pointer(path);
  if (segments.length === 0) return structuredClone(value);
  const { parent, key } = parentOf(document, segments, path);
  if (Array.isArray(parent)) {
    const index = key === '-' ? parent.length : Number(key);
    if (!(index >= 0 && index <= parent.length - (replace ? 1 : 0))) throw new PatchError(`doc is missing path: "${path}"`);
    parent.splice(index, replace ? 1 : 0, structuredClone(value));
  } else {
    if (replace && !(key in parent)) throw new PatchError(`doc is missing path: "${path}"`);
    parent[key] = structuredClone(value);
  }
  return document;
}

/** RFC 6902, all six operations; a failed `test` or a missing path fails the whole patch. */
export function jsonPatch(target: Json, operations: Json): Json {
  if (!Array.isArray(operations)) throw new PatchError('a JSON patch is a list of operations');
  let document = structuredClone(target);
  for (const operation of operations) {
    if (!isObject(operation) || typeof operation.path !== 'string') throw new PatchError('each operation needs "op" and "path"');
    const { op, path } = operation;
    switch (op) {
      case 'add': document = add(document, path, operation.value, false); break;
      case 'replace': document = add(document, path, operation.value, true); break;
      case 'remove': remove(document, path); break;
      case 'test':
        if (JSON.stringify(read(document, path)) !== JSON.stringify(operation.value)) throw new PatchError(`testing value ${path} failed`);
        break;
      case 'move': case 'copy': {
        if (typeof operation.from !== 'string') throw new PatchError(`${op} needs "from"`);
        const value = op === 'move' ? remove(document, operation.from) : read(document, operation.from);
        document = add(document, path, value, false);
        break;
      }
      default: throw new PatchError(`unexpected kind of operation: ${String(op)}`);
    }
  }
  return document;
}
