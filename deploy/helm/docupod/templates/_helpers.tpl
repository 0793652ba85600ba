{{/* Names ------------------------------------------------------------------------------------------------------ */}}
{{- define "docupod.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "docupod.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The roles of distributed mode, in a stable order. */}}
{{- define "docupod.roles" -}}gateway ingest retrieval chat models web{{- end -}}

{{/* "<fullname>-<component>", e.g. docupod-gateway; embedded mode's single component is "server". */}}
{{- define "docupod.componentName" -}}
{{- printf "%s-%s" (include "docupod.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "docupod.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "docupod.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: docupod
{{- end -}}

{{- define "docupod.selectorLabels" -}}
app.kubernetes.io/name: {{ include "docupod.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of one component: dict "root" $ "component" "gateway" */}}
{{- define "docupod.componentLabels" -}}
{{ include "docupod.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}
{{- define "docupod.componentSelector" -}}
{{ include "docupod.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "docupod.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "docupod.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "docupod.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "docupod.secretName" -}}
{{- default (include "docupod.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* Whether a database URL reaches the pods (from values, the bundled Postgres, or an existing Secret). */}}
{{- define "docupod.hasDatabase" -}}
{{- if or .Values.database.url .Values.postgres.enabled (and .Values.secrets.existingSecret (eq .Values.mode "distributed")) -}}true{{- end -}}
{{- end -}}

{{/* Environment shared by every docupod container. */}}
{{- define "docupod.env" -}}
- name: DOCUPOD_JWT_SECRET
  valueFrom:
    secretKeyRef: { name: {{ include "docupod.secretName" . }}, key: {{ .Values.secrets.keys.jwtSecret }} }
- name: DOCUPOD_INTERNAL_TOKEN
  valueFrom:
    secretKeyRef: { name: {{ include "docupod.secretName" . }}, key: {{ .Values.secrets.keys.internalToken }} }
{{- /* The generated Secret always holds it; an existing Secret may leave it out (then /metrics has no token). */}}
- name: DOCUPOD_METRICS_TOKEN
  valueFrom:
    secretKeyRef: { name: {{ include "docupod.secretName" . }}, key: {{ .Values.secrets.keys.metricsToken }}{{ if .Values.secrets.existingSecret }}, optional: true{{ end }} }
{{- if include "docupod.hasDatabase" . }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef: { name: {{ include "docupod.secretName" . }}, key: {{ .Values.secrets.keys.databaseUrl }} }
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "docupod.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end -}}
{{- define "docupod.securityContext" -}}
{{ toYaml .Values.securityContext }}
{{- end -}}

{{/* Probes on the numeric port (podman kube play mistranslates named ports). */}}
{{- define "docupod.probes" -}}
startupProbe:
  httpGet: { path: /healthz, port: {{ .Values.containerPort }} }
  {{- toYaml .Values.probes.startup | nindent 2 }}
livenessProbe:
  httpGet: { path: /healthz, port: {{ .Values.containerPort }} }
  {{- toYaml .Values.probes.liveness | nindent 2 }}
readinessProbe:
  httpGet: { path: /readyz, port: {{ .Values.containerPort }} }
  {{- toYaml .Values.probes.readiness | nindent 2 }}
{{- end -}}

{{/* Components that the ingress controller may reach. */}}
{{- define "docupod.publicComponents" -}}
{{- if eq .Values.mode "embedded" -}}server{{- else -}}gateway web models{{- end -}}
{{- end -}}

{{- define "docupod.ollamaUrl" -}}
{{- printf "http://%s-ollama:11434" (include "docupod.fullname" .) -}}
{{- end -}}
