{{/* The release's base name for every object of the chart. */}}
{{- define "sluice.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "sluice.labels" -}}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sluice.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Workers run the operator's own image unless told otherwise: one image, both roles. */}}
{{- define "sluice.workerImage" -}}
{{- default (include "sluice.image" .) .Values.workerImage -}}
{{- end -}}

{{/* What the operator may do to ProcessingJobs and their children, cluster-wide or per namespace. */}}
{{- define "sluice.rules" -}}
- apiGroups: [sluice.dev]
  resources: [processingjobs]
  verbs: [get, list, watch]
- apiGroups: [sluice.dev]
  resources: [processingjobs/status]
  verbs: [get, patch, update]
# Children carry ownerReferences with blockOwnerDeletion, which clusters with the
# OwnerReferencesPermissionEnforcement admission plugin only allow to whoever may update the owner's finalizers.
- apiGroups: [sluice.dev]
  resources: [processingjobs/finalizers]
  verbs: [update]
# Snapshots: the operator takes them on a schedule and before upgrades, and retires the oldest it took
# (spec.snapshots.keep): the one delete it does; their finalizer removes their files first.
- apiGroups: [sluice.dev]
  resources: [processingjobsnapshots]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [sluice.dev]
  resources: [processingjobsnapshots/status]
  verbs: [get, patch, update]
- apiGroups: [sluice.dev]
  resources: [processingjobsnapshots/finalizers]
  verbs: [update]
# Tasks on a job's checkpoint volume (snapshot, restore, delete files) run as Jobs; finished ones expire by TTL.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch]
# Children are server-side applied (create + patch); garbage collection through owner references deletes them.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [configmaps, services, persistentvolumeclaims]
  verbs: [get, list, watch, create, patch]
# Worker pod failures (CrashLoopBackOff, ImagePullBackOff, Pending) surface in the job's status.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# Only to check that the Secrets a job names exist and hold the keys it names; values are never copied.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch, list]
# spec.autoscaling: an HPA (or KEDA's, for a ScaledObject) that also scales a job stops Sluice from acting.
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list]
{{- end -}}
