{{/*
Chart name, truncated to the 63 characters a DNS label allows.
*/}}
{{- define "vlaops-triton.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of every resource: the release name, plus the chart name unless the release name
already contains it.
*/}}
{{- define "vlaops-triton.fullname" -}}
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

{{/*
chart label value: name-version.
*/}}
{{- define "vlaops-triton.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that identify the release.
*/}}
{{- define "vlaops-triton.instanceLabels" -}}
app.kubernetes.io/name: {{ include "vlaops-triton.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector labels of the Triton pods: stable across upgrades, so no chart or app version here.
The component keeps the helm test pod out of the Service, PDB and NetworkPolicy selections.
*/}}
{{- define "vlaops-triton.selectorLabels" -}}
{{ include "vlaops-triton.instanceLabels" . }}
app.kubernetes.io/component: inference
{{- end }}

{{/*
Labels shared by every resource.
*/}}
{{- define "vlaops-triton.commonLabels" -}}
helm.sh/chart: {{ include "vlaops-triton.chart" . }}
app.kubernetes.io/version: {{ include "vlaops-triton.imageTag" . | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vlaops
{{- end }}

{{/*
Labels on the release's resources.
*/}}
{{- define "vlaops-triton.labels" -}}
{{ include "vlaops-triton.commonLabels" . }}
{{ include "vlaops-triton.selectorLabels" . }}
{{- end }}

{{/*
Labels of the helm test pod.
*/}}
{{- define "vlaops-triton.testLabels" -}}
{{ include "vlaops-triton.instanceLabels" . }}
app.kubernetes.io/component: test
{{- end }}

{{/*
Name of the ServiceAccount the pods run as.
*/}}
{{- define "vlaops-triton.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vlaops-triton.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image tag: the value, or the chart's appVersion.
*/}}
{{- define "vlaops-triton.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
Full image reference; a digest wins over the tag.
*/}}
{{- define "vlaops-triton.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "vlaops-triton.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
In-cluster gRPC address of the Service.
*/}}
{{- define "vlaops-triton.grpcAddress" -}}
{{- printf "%s.%s.svc.cluster.local:%v" (include "vlaops-triton.fullname" .) .Release.Namespace .Values.service.grpcPort }}
{{- end }}

{{/*
checkov skip annotations for settings that are deliberately left to the cluster operator. They
appear only while the setting is unset, so a values file that sets it gets the full check.
Usage: include "vlaops-triton.checkovSkips" (dict "root" . "resources" .Values.resources "pod" true)
*/}}
{{- define "vlaops-triton.checkovSkips" -}}
{{- $skips := list }}
{{- $res := .resources | default dict }}
{{- $req := $res.requests | default dict }}
{{- $lim := $res.limits | default dict }}
{{- $why := "requests/limits depend on the node shape; the chart bakes in no numbers (see values.yaml resources)" }}
{{- if not $req.cpu }}{{ $skips = append $skips (printf "CKV_K8S_10=CPU %s" $why) }}{{ end }}
{{- if not $lim.cpu }}{{ $skips = append $skips (printf "CKV_K8S_11=CPU %s" $why) }}{{ end }}
{{- if not $req.memory }}{{ $skips = append $skips (printf "CKV_K8S_12=memory %s" $why) }}{{ end }}
{{- if not $lim.memory }}{{ $skips = append $skips (printf "CKV_K8S_13=memory %s" $why) }}{{ end }}
{{- if ne .root.Values.image.pullPolicy "Always" }}
{{- $skips = append $skips "CKV_K8S_15=IfNotPresent on purpose: tags are immutable and Always would make every pod start depend on the registry; set image.pullPolicy to Always to change" }}
{{- end }}
{{- if lt (int (.root.Values.podSecurityContext.runAsUser | default 0)) 10000 }}
{{- $skips = append $skips "CKV_K8S_40=runs as uid 1000, the non-root user NVIDIA's Triton images own their files with; set podSecurityContext.runAsUser to a high uid if your image allows" }}
{{- end }}
{{- if not .root.Values.networkPolicy.enabled }}
{{- $skips = append $skips "CKV2_K8S_6=networkPolicy.enabled is false: the operator chose cluster-level network policies instead of the chart's" }}
{{- end }}
{{- if not .root.Values.image.digest }}
{{- $skips = append $skips "CKV_K8S_43=image pinned by an immutable version tag (Artifact Registry immutable tags); set image.digest to pin by digest" }}
{{- end }}
{{- range $i, $s := concat $skips (.extra | default list) }}
checkov.io/skip{{ add1 $i }}: {{ $s | quote }}
{{- end }}
{{- end }}
