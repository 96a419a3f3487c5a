{{/*
Names, labels and the derived settings every template shares.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "kube-idp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's resources: fullnameOverride, else the release name when it
already contains the chart name, else `<release>-<chart>`. At most 57 characters, so that
the `-redis` and `-tls` suffixes still fit a DNS label.
*/}}
{{- define "kube-idp.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 57 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The chart label value: name and version. */}}
{{- define "kube-idp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource of the release. */}}
{{- define "kube-idp.commonLabels" -}}
helm.sh/chart: {{ include "kube-idp.chart" . }}
{{ include "kube-idp.baseSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kube-idp
{{- end }}

{{/* Labels on kube-idp's own resources. */}}
{{- define "kube-idp.labels" -}}
{{ include "kube-idp.commonLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/* Labels on the bundled Redis's resources. */}}
{{- define "kube-idp.redisLabels" -}}
{{ include "kube-idp.commonLabels" . }}
app.kubernetes.io/component: redis
{{- end }}

{{/* The labels naming the release, shared by kube-idp's and Redis's selectors. */}}
{{- define "kube-idp.baseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "kube-idp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The labels that select kube-idp's pods. */}}
{{- define "kube-idp.selectorLabels" -}}
{{ include "kube-idp.baseSelectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/* The labels that select the bundled Redis's pod. */}}
{{- define "kube-idp.redisSelectorLabels" -}}
{{ include "kube-idp.baseSelectorLabels" . }}
app.kubernetes.io/component: redis
{{- end }}

{{/* The ServiceAccount's name. */}}
{{- define "kube-idp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kube-idp.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The subject of kube-idp's role bindings: its ServiceAccount. */}}
{{- define "kube-idp.rbacSubject" -}}
- kind: ServiceAccount
  name: {{ include "kube-idp.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{/* The kube-idp image reference. */}}
{{- define "kube-idp.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
The issuer URL: `issuer` when set, else `https://<portal.hostname>:<portal.https.port>` with
the port left out when it is 443.
*/}}
{{- define "kube-idp.issuer" -}}
{{- if .Values.issuer }}
{{- .Values.issuer | trimSuffix "/" }}
{{- else }}
{{- $host := required "portal.hostname is required (the public host name of the provider)" .Values.portal.hostname }}
{{- $port := int .Values.portal.https.port }}
{{- if or (eq $port 443) (eq $port 0) }}
{{- printf "https://%s" $host }}
{{- else }}
{{- printf "https://%s:%d" $host $port }}
{{- end }}
{{- end }}
{{- end }}

{{/* The host of the issuer URL: the Ingress host and the TLS host. */}}
{{- define "kube-idp.host" -}}
{{- (urlParse (include "kube-idp.issuer" .)).hostname }}
{{- end }}

{{/* The Redis URL passed with --redis, or empty for the in-memory store. */}}
{{- define "kube-idp.redisUrl" -}}
{{- if .Values.redis.url }}
{{- .Values.redis.url }}
{{- else if .Values.redis.enabled }}
{{- printf "redis://%s-redis:6379" (include "kube-idp.fullname" .) }}
{{- end }}
{{- end }}

{{/* Whether the replicas share a state store. */}}
{{- define "kube-idp.sharedStore" -}}
{{- if or .Values.redis.url .Values.redis.enabled .Values.redis.existingSecret }}true{{- end }}
{{- end }}

{{/* The Service port: service.port, else 443 with tls.enabled, else 80. */}}
{{- define "kube-idp.servicePort" -}}
{{- if .Values.service.port }}
{{- int .Values.service.port }}
{{- else if .Values.tls.enabled }}443
{{- else }}80
{{- end }}
{{- end }}

{{/* The name of the Secret served with tls.enabled. */}}
{{- define "kube-idp.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "kube-idp.fullname" .)) .Values.tls.secretName }}
{{- end }}

{{/* The name of the Secret the Ingress terminates TLS with. */}}
{{- define "kube-idp.ingressTlsSecretName" -}}
{{- default (printf "%s-tls" (include "kube-idp.fullname" .)) .Values.ingress.tls.secretName }}
{{- end }}

{{/* Whether a PodDisruptionBudget is rendered. */}}
{{- define "kube-idp.pdbEnabled" -}}
{{- if or .Values.podDisruptionBudget.enabled (gt (int .Values.replicaCount) 1) }}true{{- end }}
{{- end }}

{{/* Settings that cannot work together stop the render with a message. */}}
{{- define "kube-idp.validate" -}}
{{- if not (has .Values.logFormat (list "text" "json")) }}
{{- fail (printf "logFormat must be text or json, not %q" (toString .Values.logFormat)) }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not (include "kube-idp.sharedStore" .)) }}
{{- fail "replicaCount > 1 needs a shared state store: set redis.url, redis.existingSecret or redis.enabled" }}
{{- end }}
{{- if and .Values.redis.enabled (or .Values.redis.url .Values.redis.existingSecret) }}
{{- fail "redis.enabled runs a bundled Redis: leave redis.url and redis.existingSecret empty, or turn it off" }}
{{- end }}
{{- if and .Values.redis.url .Values.redis.existingSecret }}
{{- fail "set one of redis.url and redis.existingSecret" }}
{{- end }}
{{- if not .Values.signingKeys.secretName }}
{{- fail "signingKeys.secretName is required" }}
{{- end }}
{{- if and .Values.ingress.enabled (regexMatch "^[0-9.]+$|:" (include "kube-idp.host" .)) }}
{{- fail "an Ingress host must be a DNS name, not an IP address: use e.g. <ip>.nip.io as portal.hostname" }}
{{- end }}
{{- if not .Values.clients.namespace }}
{{- fail "clients.namespace is required" }}
{{- end }}
{{- end }}
