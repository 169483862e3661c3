{{- define "llmdocs.fullname" -}}
{{- printf "%s-%s" .root.Release.Name .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llmdocs.labels" -}}
app.kubernetes.io/name: llmdocs
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* The settings that tell every service where the others answer. */}}
{{- define "llmdocs.env" -}}
{{- $root := . -}}
- name: LLMDOCS_HOST
  value: "0.0.0.0"
- name: LLMDOCS_EVENTS_URL
  value: {{ .Values.eventsUrl | quote }}
- name: LLMDOCS_CACHE_URL
  value: {{ .Values.cacheUrl | quote }}
- name: LLMDOCS_INPROCESS_CALLS
  value: "false"
{{- if .Values.blobUrl }}
- name: LLMDOCS_DOCSTORE_BLOB_URL
  value: {{ .Values.blobUrl | quote }}
{{- end }}
{{- $scheme := ternary "https" "http" .Values.tls.enabled }}
{{- range $name, $svc := .Values.services }}
- name: {{ printf "LLMDOCS_%s_URL" (include "llmdocs.settingKey" $name) }}
  value: {{ printf "%s://%s:%v" $scheme (include "llmdocs.fullname" (dict "root" $root "name" $name)) $svc.port | quote }}
{{- end }}
{{- if .Values.tls.enabled }}
{{- /* the same paths in both ways: a pod mounts its own pair under these names */}}
- name: LLMDOCS_TLS_CERT
  value: {{ printf "%s/tls.crt" (include "llmdocs.tlsDir" .) }}
- name: LLMDOCS_TLS_KEY
  value: {{ printf "%s/tls.key" (include "llmdocs.tlsDir" .) }}
- name: LLMDOCS_TLS_CA
  value: {{ printf "%s/ca.crt" (include "llmdocs.tlsDir" .) }}
{{- end }}
{{- with .Values.oidc }}
{{- if .issuer }}
- name: LLMDOCS_OIDC_ISSUER
  value: {{ .issuer | quote }}
- name: LLMDOCS_OIDC_AUDIENCE
  value: {{ required "oidc.audience: tokens are checked for the audience they were issued to" .audience | quote }}
- name: LLMDOCS_OIDC_ROLES_CLAIM
  value: {{ .rolesClaim | quote }}
- name: LLMDOCS_OIDC_ROLE_MAP
  value: {{ .roleMap | default dict | toJson | quote }}
{{- end }}
{{- end }}
{{- if not (kindIs "invalid" .Values.rateLimitPerMinute) }}
- name: LLMDOCS_RATE_LIMIT_PER_MINUTE
  value: {{ int64 .Values.rateLimitPerMinute | quote }}
{{- end }}
{{- range $key, $value := .Values.extraEnv }}
- name: {{ $key }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* Service name -> settings key: llm-gateway -> GATEWAY, doc-store -> DOCSTORE. */}}
{{- define "llmdocs.settingKey" -}}
{{- $keys := dict "llm-gateway" "GATEWAY" "discovery-agent" "DISCOVERY" "log-collector" "LOGCOLLECTOR" -}}
{{- get $keys . | default (. | replace "-" "" | upper) -}}
{{- end -}}

{{/* The most pods a service may run: its replicas, or its autoscaler's maximum. */}}
{{- define "llmdocs.maxReplicas" -}}
{{- if and .autoscaling .autoscaling.enabled -}}{{ .autoscaling.maxReplicas }}{{- else -}}{{ .replicas }}{{- end -}}
{{- end -}}

{{/* Doc-store replicas each write blobs to their own disk unless the blobs are shared. */}}
{{- define "llmdocs.checkBlobs" -}}
{{- $docstore := get .Values.services "doc-store" -}}
{{- if and $docstore (gt (int (include "llmdocs.maxReplicas" $docstore)) 1) -}}
{{- if not (or (hasPrefix "s3://" .Values.blobUrl) .Values.blobClaim) -}}
{{- fail "doc-store may run more than one replica, so its blobs must be shared: set blobUrl to s3://bucket/prefix or blobClaim to a ReadWriteMany PersistentVolumeClaim" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Where a pod finds its certificate, key and CA when tls.enabled. */}}
{{- define "llmdocs.tlsDir" -}}/etc/llmdocs/tls{{- end -}}

{{/* The Secret holding a service's pair: cert-manager's per service, or the operator's one. */}}
{{- define "llmdocs.tlsSecret" -}}
{{- .root.Values.tls.existingSecret | default (printf "%s-tls" (include "llmdocs.fullname" .)) -}}
{{- end -}}

{{/* The port's name says its protocol to meshes and ingresses: https once TLS is on. */}}
{{- define "llmdocs.portName" -}}{{ ternary "https" "http" .Values.tls.enabled }}{{- end -}}

{{/* A probe asking `path`; with TLS on, the healthcheck module does, in the container: the
kubelet's httpGet cannot present a client certificate, the module presents the pod's. */}}
{{- define "llmdocs.probe" -}}
{{- if .root.Values.tls.enabled -}}
exec:
  command: ["python", "-m", "llmdocs.healthcheck"{{ if ne .path "/health/live" }}, {{ .path | quote }}{{ end }}]
timeoutSeconds: {{ .root.Values.tls.probeTimeoutSeconds }}
{{- else -}}
httpGet: {path: {{ .path | quote }}, port: http}
{{- end -}}
{{- end -}}

{{/* The port a URL names, or its scheme's: https://idp.example.com -> 443. */}}
{{- define "llmdocs.urlPort" -}}
{{- $url := urlParse . -}}
{{- $hostPort := splitList ":" $url.host -}}
{{- if gt (len $hostPort) 1 -}}{{ last $hostPort }}{{- else -}}{{ ternary 443 80 (eq $url.scheme "https") }}{{- end -}}
{{- end -}}
