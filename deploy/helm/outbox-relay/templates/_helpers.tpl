{{- define "outbox-relay.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "outbox-relay.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A slot's objects: slot names use underscores, Kubernetes names dashes. */}}
{{- define "outbox-relay.slotname" -}}
{{- printf "%s-%s" (include "outbox-relay.fullname" .root) (.slot.name | replace "_" "-") | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "outbox-relay.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "outbox-relay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "outbox-relay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "outbox-relay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "outbox-relay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "outbox-relay.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "outbox-relay.secretName" -}}
{{- if .Values.secretEnv.existingSecret -}}
{{- .Values.secretEnv.existingSecret -}}
{{- else if .Values.secretEnv.create -}}
{{- include "outbox-relay.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* The relay's config.yaml for one slot. */}}
{{- define "outbox-relay.config" -}}
{{- $root := .root -}}
{{- $cfg := deepCopy $root.Values.config -}}
{{- $pg := get $cfg "postgres" | default dict -}}
{{- $_ := set $pg "slot" .slot.name -}}
{{- $_ := set $pg "publication" (.slot.publication | default "outbox_pub") -}}
{{- $_ := set $cfg "postgres" $pg -}}
{{- $kafka := get $cfg "kafka" | default dict -}}
{{- $_ := set $kafka "drain_timeout" (printf "%ds" (int $root.Values.drainTimeoutSeconds)) -}}
{{- $_ := set $cfg "kafka" $kafka -}}
{{- if .slot.table -}}
{{- $outbox := get $cfg "outbox" | default dict -}}
{{- $_ := set $outbox "table" .slot.table -}}
{{- $_ := set $cfg "outbox" $outbox -}}
{{- end -}}
{{- $_ := set $cfg "http" (dict "listen" (printf "0.0.0.0:%d" (int $root.Values.http.port)) "ready_kafka_timeout" ($root.Values.http.readyKafkaTimeout | default "15s")) -}}
{{- toYaml $cfg -}}
{{- end -}}
