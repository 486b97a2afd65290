{{/* The stable release's name: the canary release is "<stable>-canary", a deployed baseline
"<stable>-baseline". */}}
{{- define "apex.stableName" -}}
{{- .Release.Name | trimSuffix "-canary" | trimSuffix "-baseline" -}}
{{- end -}}

{{/* `track` set (a deployed baseline: `--set-string track=baseline`) wins; otherwise canary or
stable. Prometheus relabels it onto the series, so the queries tell the arms apart. */}}
{{- define "apex.track" -}}
{{- if .Values.track -}}{{ .Values.track }}{{- else if .Values.canary.enabled -}}canary{{- else -}}stable{{- end -}}
{{- end -}}

{{/* Labels shared by every object; pods also carry `version`, which the queries select by. */}}
{{- define "apex.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ include "apex.stableName" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
track: {{ include "apex.track" . }}
{{- end -}}

{{- define "apex.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ include "apex.stableName" . }}
track: {{ include "apex.track" . }}
{{- end -}}
