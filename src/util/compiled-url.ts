import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * URL of a build output (compiled JavaScript, or WebAssembly built from .wat) beside `metaUrl`.
 * Worker threads need JavaScript: when the caller runs from TypeScript sources (under vitest),
 * the file is taken from `dist/` (npm run build).
 */
export function compiledModuleUrl(metaUrl: string, file: string): URL {
  const base = metaUrl.endsWith('.ts') ? metaUrl.replace(/\/src\/(?!.*\/src\/)/, '/dist/') : metaUrl;
  const url = new URL(file, base);
  if (!existsSync(fileURLToPath(url))) {
    throw new Error(`${fileURLToPath(url)} is missing: run \`npm run build\` first`);
  }
  return url;
}
