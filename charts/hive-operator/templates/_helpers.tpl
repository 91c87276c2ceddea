{{/* Names, labels and shared lists of the hive-operator chart. */}}

{{- define "hive-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-scoped, at most 63 characters (a DNS label). */}}
{{- define "hive-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "hive-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the operator's pods; never change them after the first release. */}}
{{- define "hive-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hive-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hive-operator.labels" -}}
helm.sh/chart: {{ include "hive-operator.chart" . }}
{{ include "hive-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: hive
{{- end }}

{{- define "hive-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hive-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "hive-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "hive-operator.metricsService" -}}
{{- printf "%s-metrics" (include "hive-operator.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{- define "hive-operator.webhookService" -}}
{{- printf "%s-webhook" (include "hive-operator.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/* The Secret holding tls.crt, tls.key and ca.crt, mounted at /tls. */}}
{{- define "hive-operator.tlsSecret" -}}
{{- printf "%s-webhook-tls" (include "hive-operator.fullname" . | trunc 51 | trimSuffix "-") }}
{{- end }}

{{- define "hive-operator.certificate" -}}
{{- printf "%s-webhook" (include "hive-operator.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/* The plural of every hive.dev kind; one RBAC rule entry and one webhook each. */}}
{{- define "hive-operator.plurals" -}}
agentteams toolversions sandboxpolicies chaosexperiments memorystores
{{- end }}
