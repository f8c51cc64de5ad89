import * as path from 'node:path';

/** The runtime directory: $UPLINKD_RUNTIME_DIR when set to an absolute path (tests, labs), else /run/uplinkd (the unit's RuntimeDirectory). */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.UPLINKD_RUNTIME_DIR;
  return dir !== undefined && path.isAbsolute(dir) ? dir : '/run/uplinkd';
}
