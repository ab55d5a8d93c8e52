{{/* Names, labels, the policy and the mcp-edge container, shared by the templates. */}}

{{- define "mcp-edge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mcp-edge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "mcp-edge.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mcp-edge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcp-edge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mcp-edge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "mcp-edge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "mcp-edge.tlsSecretName" -}}
{{- if .Values.edge.tls.certManager.enabled -}}
{{- printf "%s-tls" (include "mcp-edge.fullname" .) -}}
{{- else -}}
{{- .Values.edge.tls.secretName -}}
{{- end -}}
{{- end -}}

{{/* The policy file: chart-managed keys, with .Values.edge.policy merged over them. */}}
{{- define "mcp-edge.policy" -}}
{{- $managed := dict
  "listen" (dict "https" (printf "0.0.0.0:%d" (int .Values.edge.httpsPort)) "admin" (printf "0.0.0.0:%d" (int .Values.edge.adminPort)))
  "tls" (dict "cert" "/etc/mcp-edge/tls/tls.crt" "key" "/etc/mcp-edge/tls/tls.key")
  "shutdown" (dict "drain_delay" (printf "%ds" (int .Values.edge.drain.delaySeconds)) "drain_timeout" (printf "%ds" (int .Values.edge.drain.timeoutSeconds)))
  "mcp" (dict "session_key" "${MCP_SESSION_KEY}")
-}}
{{- $policy := mustMergeOverwrite $managed (deepCopy .Values.edge.policy) -}}
{{- if .Values.edge.tokens.existingSecret -}}
{{- $auth := default dict $policy.auth -}}
{{- $bearer := default dict $auth.bearer -}}
{{- $_ := set $bearer "tokens_file" "/etc/mcp-edge/tokens/tokens" -}}
{{- $_ := set $auth "bearer" $bearer -}}
{{- $_ := set $policy "auth" $auth -}}
{{- end -}}
{{- if or .Values.edge.store.redis.url .Values.edge.store.redis.existingSecret -}}
{{- $store := default dict $policy.store -}}
{{- $redis := default dict $store.redis -}}
{{- $_ := set $redis "url" "${REDIS_URL}" -}}
{{- $_ := set $store "backend" "redis" -}}
{{- $_ := set $store "redis" $redis -}}
{{- $_ := set $policy "store" $store -}}
{{- end -}}
{{- if .Values.edge.sessionEncryptionKey.existingSecret -}}
{{- $sessions := default dict $policy.sessions -}}
{{- $_ := set $sessions "encryption_key" "${SESSION_ENCRYPTION_KEY}" -}}
{{- $_ := set $policy "sessions" $sessions -}}
{{- end -}}
{{- toYaml $policy -}}
{{- end -}}

{{/*
The mcp-edge container. Teams embedding mcp-edge in their own charts can include it:
  {{- include "mcp-edge.sidecar" . | nindent 8 }}
with this chart's `edge` values, the volumes of "mcp-edge.volumes" and the ConfigMap.
*/}}
{{- define "mcp-edge.sidecar" -}}
- name: mcp-edge
  image: "{{ .Values.edge.image.repository }}:{{ .Values.edge.image.tag }}"
  imagePullPolicy: {{ .Values.edge.image.pullPolicy }}
  {{- if .Values.edge.nativeSidecar }}
  restartPolicy: Always
  {{- end }}
  args: ["run", "--config", "/etc/mcp-edge/config/mcp-edge.yaml"]
  env:
    - name: LOG_LEVEL
      value: {{ .Values.edge.logLevel | quote }}
    {{- if .Values.edge.sessionKey.existingSecret }}
    - name: MCP_SESSION_KEY
      valueFrom:
        secretKeyRef:
          name: {{ .Values.edge.sessionKey.existingSecret }}
          key: session-key
    {{- end }}
    {{- if .Values.edge.store.redis.existingSecret }}
    - name: REDIS_URL
      valueFrom:
        secretKeyRef:
          name: {{ .Values.edge.store.redis.existingSecret }}
          key: {{ .Values.edge.store.redis.secretKey }}
    {{- else if .Values.edge.store.redis.url }}
    - name: REDIS_URL
      value: {{ .Values.edge.store.redis.url | quote }}
    {{- end }}
    {{- if .Values.edge.sessionEncryptionKey.existingSecret }}
    - name: SESSION_ENCRYPTION_KEY
      valueFrom:
        secretKeyRef:
          name: {{ .Values.edge.sessionEncryptionKey.existingSecret }}
          key: encryption-key
    {{- end }}
  ports:
    - name: https
      containerPort: {{ .Values.edge.httpsPort }}
      protocol: TCP
    - name: admin
      containerPort: {{ .Values.edge.adminPort }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /healthz
      port: admin
    periodSeconds: 1
    failureThreshold: 30
  livenessProbe:
    httpGet:
      path: /healthz
      port: admin
    periodSeconds: 10
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readyz
      port: admin
    periodSeconds: 2
    failureThreshold: 1
  resources:
    {{- toYaml .Values.edge.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.edge.securityContext | nindent 4 }}
  volumeMounts:
    - name: mcp-edge-config
      mountPath: /etc/mcp-edge/config
      readOnly: true
    - name: mcp-edge-tls
      mountPath: /etc/mcp-edge/tls
      readOnly: true
    {{- if .Values.edge.tokens.existingSecret }}
    - name: mcp-edge-tokens
      mountPath: /etc/mcp-edge/tokens
      readOnly: true
    {{- end }}
    - name: mcp-edge-tmp
      mountPath: /tmp
{{- end -}}

{{/* The volumes the mcp-edge container mounts (whole-directory mounts, so updates reload). */}}
{{- define "mcp-edge.volumes" -}}
- name: mcp-edge-config
  configMap:
    name: {{ include "mcp-edge.fullname" . }}
- name: mcp-edge-tls
  secret:
    secretName: {{ include "mcp-edge.tlsSecretName" . }}
{{- if .Values.edge.tokens.existingSecret }}
- name: mcp-edge-tokens
  secret:
    secretName: {{ .Values.edge.tokens.existingSecret }}
{{- end }}
- name: mcp-edge-tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}
