/** A Kubernetes object read as plain JSON: checks name the fields they need. */
export type Manifest = Record<string, any>;

/** Validates one object against its kind's OpenAPI schema (kubernetes-models, offline); throws naming the fields that are wrong. */
export async function validateKubernetesObject(object: Manifest): Promise<void> {
  const apiVersion = String(object.apiVersion);
  const kind = String(object.kind);
  // Core kinds live under kubernetes-models/v1, the others under their group.
  const noSchema = (why: string) => new Error(`no Kubernetes schema for ${apiVersion} ${kind} (${why})`);
  const module = (await import(`kubernetes-models/${apiVersion}/${kind}`).catch((error: Error) => {
    throw noSchema(error.message);
  })) as Record<string, new (data: Manifest) => { validate(): void }>;
  const Model = module[kind];
  if (Model === undefined) throw noSchema(`kubernetes-models/${apiVersion}/${kind} has no ${kind}`);
  new Model(object).validate();
}
