// The dynamic volume provisioner behind the test cluster's default StorageClass
// (`standard`, provisioner sluice.dev/host-path): for every claim of that class a
// directory on this host, mode 0777, as a hostPath PersistentVolume bound to the
// claim; the directory goes when the volume is released under reclaimPolicy Delete.
//
//   node hack/kube/provisioner.mjs --kubeconfig FILE --dir DIR
//
// It does what kind's local-path-provisioner does, without helper pods. The
// in-tree host-path provisioner of kube-controller-manager makes its directories
// 0750 root:root, and the kubelet never applies a pod's fsGroup to a hostPath
// volume, so a non-root pod on the real node (hack/node.sh) could not write to
// its claim.
//
// It follows the external-provisioner protocol: the PV controller marks a
// pending claim with volume.kubernetes.io/storage-provisioner; we create a PV
// whose claimRef names it, and the PV controller binds the two.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { KubeConfig, KubernetesObjectApi, Watch } from '@kubernetes/client-node';
import pino from 'pino';

const PROVISIONER = 'sluice.dev/host-path';
const log = pino({ name: 'sluice-test-provisioner' });
const { values } = parseArgs({ options: { kubeconfig: { type: 'string' }, dir: { type: 'string' } } });
if (!values.kubeconfig || !values.dir) throw new Error('usage: provisioner.mjs --kubeconfig FILE --dir DIR');
const base = resolve(values.dir);
mkdirSync(base, { recursive: true });

const kc = new KubeConfig();
kc.loadFromFile(values.kubeconfig);
const api = KubernetesObjectApi.makeApiClient(kc);

const status = (err) => err?.code ?? err?.statusCode ?? err?.response?.statusCode;

async function storageClass(name) {
  try {
    return await api.read({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name } });
  } catch (err) {
    if (status(err) === 404) return undefined;
    throw err;
  }
}

async function provision(pvc) {
  const annotations = pvc.metadata.annotations ?? {};
  const wanted = annotations['volume.kubernetes.io/storage-provisioner'] ?? annotations['volume.beta.kubernetes.io/storage-provisioner'];
  if (wanted !== PROVISIONER || pvc.spec.volumeName || pvc.status?.phase !== 'Pending' || pvc.metadata.deletionTimestamp) return;
  const sc = await storageClass(pvc.spec.storageClassName);
  if (sc?.provisioner !== PROVISIONER) return;
  const name = `pvc-${pvc.metadata.uid}`;
  const path = join(base, name);
  mkdirSync(path, { recursive: true });
  chmodSync(path, 0o777); // any pod's user may write: no fsGroup reaches a hostPath volume
  try {
    await api.create({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name, annotations: { 'pv.kubernetes.io/provisioned-by': PROVISIONER } },
      spec: {
        capacity: { storage: pvc.spec.resources.requests.storage },
        accessModes: pvc.spec.accessModes,
        volumeMode: pvc.spec.volumeMode ?? 'Filesystem',
        persistentVolumeReclaimPolicy: sc.reclaimPolicy ?? 'Delete',
        storageClassName: pvc.spec.storageClassName,
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: pvc.metadata.namespace, name: pvc.metadata.name, uid: pvc.metadata.uid },
        hostPath: { path, type: 'DirectoryOrCreate' },
      },
    });
    log.info({ pvc: `${pvc.metadata.namespace}/${pvc.metadata.name}`, pv: name, path }, 'provisioned');
  } catch (err) {
    if (status(err) !== 409) throw err; // 409: made by an earlier pass
  }
}

async function reclaim(pv) {
  if (pv.metadata.annotations?.['pv.kubernetes.io/provisioned-by'] !== PROVISIONER) return;
  if (pv.status?.phase !== 'Released' || pv.spec.persistentVolumeReclaimPolicy !== 'Delete') return;
  const path = pv.spec.hostPath?.path;
  if (path && resolve(path).startsWith(`${base}/`)) rmSync(path, { recursive: true, force: true });
  try {
    await api.delete(pv);
    log.info({ pv: pv.metadata.name }, 'deleted');
  } catch (err) {
    if (status(err) !== 404) throw err;
  }
}

// One queue: events are handled one at a time, in order.
let queue = Promise.resolve();
const handle = (fn, obj) => {
  queue = queue.then(() => fn(obj)).catch((err) => log.warn({ err: String(err?.body?.message ?? err), object: obj.metadata?.name }, 'will retry at the next resync'));
};

// list, then watch from the list's version; a resync every 30 s catches anything a watch missed.
async function follow(kind, path, fn) {
  for (;;) {
    try {
      const list = await api.list('v1', kind);
      for (const item of list.items) handle(fn, item);
      await new Promise((done) => {
        let controller;
        const timer = setTimeout(() => controller?.abort(), 30_000);
        new Watch(kc)
          .watch(path, { resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true }, (type, obj) => {
            if (type === 'ADDED' || type === 'MODIFIED') handle(fn, obj);
          }, () => {
            clearTimeout(timer);
            done();
          })
          .then((c) => (controller = c), () => {
            clearTimeout(timer);
            done();
          });
      });
    } catch (err) {
      log.warn({ kind, err: String(err?.body?.message ?? err) }, 'list failed; retrying');
      await sleep(1_000);
    }
  }
}

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
log.info({ provisioner: PROVISIONER, dir: base }, 'provisioner started');
void follow('PersistentVolumeClaim', '/api/v1/persistentvolumeclaims', provision);
void follow('PersistentVolume', '/api/v1/persistentvolumes', reclaim);
