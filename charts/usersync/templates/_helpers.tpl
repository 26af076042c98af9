{{- define "usersync.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "usersync.serviceAccountName" -}}
{{- default (include "usersync.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* Plain manifests (deploy/) are applied with kubectl or a GitOps tool, not Helm: they must not
claim Helm manages them. */}}
{{- define "usersync.labels" -}}
{{ include "usersync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- if not .Values.plainManifests }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}
{{- end -}}

{{- define "usersync.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The port of `listen` (host:port or [v6]:port): the container port, probes and Service follow it. */}}
{{- define "usersync.port" -}}
{{- splitList ":" .Values.listen | last | int -}}
{{- end -}}

{{- define "usersync.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace -}}
{{- end -}}

{{- define "usersync.connectionNamespace" -}}
{{- .Values.connectionNamespace | default .Release.Namespace -}}
{{- end }}

{{- /* Where the operator reads Secrets and ConfigMaps: `*`, or the release namespace, the cluster
connections' namespace and those listed. */}}
{{- define "usersync.secretNamespaces" -}}
{{- if has "*" .Values.secretNamespaces -}}
*
{{- else -}}
{{- $namespaces := list .Release.Namespace (include "usersync.connectionNamespace" .) -}}
{{- join "," (concat $namespaces .Values.secretNamespaces | uniq) -}}
{{- end -}}
{{- end }}
