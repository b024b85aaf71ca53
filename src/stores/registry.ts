import type { StoreLocation } from './location.js';
import type { ObjectStore, StoreOptions } from './types.js';

/**
 * Opens the store for a location. Each cloud SDK is imported here, on first use only, so
 * an agent without snapshot steps never loads them.
 */
export async function openStore(location: StoreLocation, options: StoreOptions): Promise<ObjectStore> {
  switch (location.scheme) {
    case 's3':
      return (await import('./s3.js')).openS3Store(location, options);
    case 'gs':
      return (await import('./gcs.js')).openGcsStore(location, options);
    case 'az':
      return (await import('./azure.js')).openAzureStore(location, options);
    case 'file':
      return (await import('./file.js')).openFileStore(location, options);
  }
}
