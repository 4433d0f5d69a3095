import type { ManifestImage, ManifestNpmPackage, ManifestSignature } from './manifest.js';

export const README_FILE = 'README.txt';

export interface ReadmeFacts {
  readonly name: string;
  readonly version: string;
  readonly commit: string;
  readonly createdAt: string;
  readonly images: readonly Pick<ManifestImage, 'ref' | 'file' | 'role'>[];
  readonly npmPackage: Pick<ManifestNpmPackage, 'file'>;
  readonly sbomFile: string;
  readonly signature: ManifestSignature;
}

/** The short README for the receiving site, written into every bundle. */
export function renderReadme(f: ReadmeFacts): string {
  const images = f.images.map((i) => `  ${i.file}\n      ${i.ref} (${i.role})`).join('\n');
  const signature =
    f.signature.method === 'cosign-blob'
      ? `This bundle is signed: ${f.signature.signatureFile} is a cosign signature over SHA256SUMS.
Verify it with the public key you received separately (never one shipped inside the bundle):
    cosign verify-blob --key cosign.pub --signature ${f.signature.signatureFile} \\
        --insecure-ignore-tlog=true SHA256SUMS`
      : `This bundle is NOT signed (signature: none, checksums only). The checksums detect
damage and partial edits; they cannot stop someone who rewrites every list.
Compare the sha256 of SHA256SUMS with the value the sender gave you out of band:
    sha256sum SHA256SUMS`;
  return `${f.name} ${f.version} offline bundle
source commit ${f.commit}, created ${f.createdAt}

Contents
  manifest.json   what is in here: versions, image tags and IDs, every file with size and sha256
  SHA256SUMS      sha256 of every file, manifest.json included (sha256sum format)
${images}
  ${f.npmPackage.file}
      the sidecar as an npm package with its runtime dependencies bundled
  ${f.sbomFile}
      CycloneDX SBOM of the npm package
  tool/           the bundle checker (needs Node 20 only)

1. Check integrity first, with coreutils, before running anything from the bundle:
    cd <this directory> && sha256sum --check --strict SHA256SUMS

${signature}

2. Verify completely and load the images (Node 20 and the docker CLI; refuses a bundle
   with any missing, extra or altered file before loading anything):
    tool/scripts/offline-bundle load .
   To mirror the images into an internal registry as well:
    tool/scripts/offline-bundle load . --registry registry.example.internal/tcpao
   With a cosign public key: add --cosign-key cosign.pub (and --require-signature).

3. Check that every image is present at the right ID (exit 0 only when ready):
    tool/scripts/offline-bundle verify .          (or --json)

4. Hosts without containers: install the npm package with no registry access.
   The native addon is compiled at install: needs python3, make, g++ and the Node
   headers (npm_config_nodedir=<node prefix>, e.g. /usr for Debian's nodejs).
    npm_config_nodedir=/usr npm install --offline --no-audit --no-fund \\
        --prefix /opt/tcpao-proxy ./${f.npmPackage.file}
    /opt/tcpao-proxy/node_modules/.bin/tcpao-proxy --version

Keys: TCPAO_KEY is injected at run time (orchestrator secret or env file); it is
never part of the images or of this bundle.
Full procedure: docs/air-gap.md in the source tree at the commit above.
`;
}
