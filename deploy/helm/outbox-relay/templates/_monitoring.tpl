{{/*
An alert's labels and annotations (templates/prometheusrule.yaml). `summary`
and `description` are Prometheus templates, passed through as they are.
*/}}
{{- define "outbox-relay.alertMeta" -}}
labels:
  severity: {{ .severity }}
  {{- with .r.alertLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  summary: {{ .summary | quote }}
  description: {{ .description | quote }}
  {{- with .r.runbookBaseUrl }}
  runbook_url: {{ printf "%s#%s" . $.anchor | quote }}
  {{- end }}
{{- end -}}
