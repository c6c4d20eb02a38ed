{{/* Name of the chart, overridable. */}}
{{- define "model-monitor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: release-chart (or the release alone when it already contains the chart name). */}}
{{- define "model-monitor.fullname" -}}
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

{{- define "model-monitor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the operator's pods; never change after install. */}}
{{- define "model-monitor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "model-monitor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* The selector labels as k=v,k2=v2 (MM_OPERATOR_POD_LABELS). */}}
{{- define "model-monitor.selectorLabelPairs" -}}
{{- $pairs := list -}}
{{- range $k, $v := (include "model-monitor.selectorLabels" . | fromYaml) -}}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* Labels of every object: pass (dict "ctx" $ "component" "operator"). */}}
{{- define "model-monitor.labels" -}}
{{- $ctx := .ctx -}}
helm.sh/chart: {{ include "model-monitor.chart" $ctx }}
app.kubernetes.io/name: {{ include "model-monitor.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/version: {{ $ctx.Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .component | default "operator" }}
app.kubernetes.io/part-of: model-monitor
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "model-monitor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "model-monitor.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "model-monitor.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The namespaces the operator watches; fails early on an impossible combination. */}}
{{- define "model-monitor.watchNamespaces" -}}
{{- if and (eq .Values.rbac.scope "namespace") (empty .Values.watchNamespaces) -}}
{{- fail "rbac.scope=namespace needs watchNamespaces: the namespaces to grant the operator access to and to watch" -}}
{{- end -}}
{{- join "," .Values.watchNamespaces -}}
{{- end -}}

{{/* The operator's RBAC rules: the one definition in files/operator-rbac-rules.yaml. */}}
{{- define "model-monitor.rbacRules" -}}
{{- .Files.Get "files/operator-rbac-rules.yaml" -}}
{{- end -}}
