import { writeFileSync } from 'node:fs';
import { crdPath, generatedTypesPath, snapshotCrdPath, snapshotTypesPath } from './paths.js';
import { generateTypes, loadCrdSchema } from './schema-to-ts.js';

// Run after editing the CRD: npx tsx operator/api/generate-types.ts
writeFileSync(generatedTypesPath, generateTypes(loadCrdSchema(crdPath)));
console.log(`wrote ${generatedTypesPath}`);
writeFileSync(snapshotTypesPath, generateTypes(loadCrdSchema(snapshotCrdPath), 'ProcessingJobSnapshot', 'crds/processingjobsnapshots.sluice.dev.yaml'));
console.log(`wrote ${snapshotTypesPath}`);
