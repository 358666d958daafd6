{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "lacewing.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Release-scoped name prefix. Components append "-manager", "-scheduler", …, so the
prefix is cut to 40 characters to leave room for a StatefulSet's pod ordinal and
controller-revision hash.
*/}}
{{- define "lacewing.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "lacewing.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every resource. */}}
{{- define "lacewing.labels" -}}
helm.sh/chart: {{ include "lacewing.chart" . }}
app.kubernetes.io/name: {{ include "lacewing.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of one component: call with (dict "root" $ "component" "scheduler"). */}}
{{- define "lacewing.componentLabels" -}}
{{ include "lacewing.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Selector labels of one component; never change after install (selectors are immutable). */}}
{{- define "lacewing.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lacewing.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "lacewing.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "lacewing.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "lacewing.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "lacewing.manager.fullname" -}}{{ include "lacewing.fullname" . }}-manager{{- end -}}
{{- define "lacewing.scheduler.fullname" -}}{{ include "lacewing.fullname" . }}-scheduler{{- end -}}
{{- define "lacewing.seedPeer.fullname" -}}{{ include "lacewing.fullname" . }}-seed-peer{{- end -}}
{{- define "lacewing.dfdaemon.fullname" -}}{{ include "lacewing.fullname" . }}-dfdaemon{{- end -}}

{{/*
The --scheduler value of every dfdaemon, seed peer and the manager: the scheduler's
headless Service name. It resolves to one A record per replica (not-ready ones too),
and daemons and manager alike count each record as a scheduler and hash every task to
one of them (rendezvous hashing), so all of them agree on a task's owner. Names are
looked up again every 30 s, so scaling scheduler.replicas needs no restart of the daemons.
*/}}
{{- define "lacewing.schedulerAddresses" -}}
{{- if .Values.scheduler.enabled -}}
{{- $name := include "lacewing.scheduler.fullname" . -}}
{{- printf "%s.%s.svc.%s:%d" $name .Release.Namespace .Values.clusterDomain (int .Values.scheduler.port) -}}
{{- else -}}
{{- required "scheduler.externalAddresses is required when scheduler.enabled is false" (join "," .Values.scheduler.externalAddresses) -}}
{{- end -}}
{{- end -}}

{{/* True (non-empty) when the manager has both an external database and Redis. */}}
{{- define "lacewing.manager.external" -}}
{{- $db := or .Values.database.url .Values.database.existingSecret .Values.database.host -}}
{{- $redis := or .Values.redis.url .Values.redis.existingSecret .Values.redis.host -}}
{{- if and $db $redis -}}true{{- end -}}
{{- end -}}

{{/* Name of the Secret holding URLs and the API token the chart creates. */}}
{{- define "lacewing.manager.secretName" -}}{{ include "lacewing.manager.fullname" . }}{{- end -}}

{{- define "lacewing.manager.apiTokenSecretName" -}}
{{- default (include "lacewing.manager.secretName" .) .Values.manager.apiToken.existingSecret -}}
{{- end -}}

{{/*
Environment that yields DATABASE_URL: from a Secret holding the URL, or assembled
from parts with the password read from a Secret (Kubernetes expands $(VAR) in env
values, so the password never appears in the pod spec).
*/}}
{{- define "lacewing.manager.databaseEnv" -}}
{{- $db := .Values.database -}}
{{- if or $db.existingSecret $db.url }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ default (include "lacewing.manager.secretName" .) $db.existingSecret }}
      key: {{ ternary $db.existingSecretKey "database-url" (ne $db.existingSecret "") }}
{{- else if $db.host }}
{{- if $db.passwordSecret.name }}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $db.passwordSecret.name }}
      key: {{ $db.passwordSecret.key }}
- name: DATABASE_URL
  value: {{ printf "postgres://%s:$(DATABASE_PASSWORD)@%s:%d/%s?sslmode=%s" $db.user $db.host (int $db.port) $db.name $db.sslMode | quote }}
{{- else }}
- name: DATABASE_URL
  value: {{ printf "postgres://%s@%s:%d/%s?sslmode=%s" $db.user $db.host (int $db.port) $db.name $db.sslMode | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "lacewing.manager.redisEnv" -}}
{{- $r := .Values.redis -}}
{{- $scheme := ternary "rediss" "redis" $r.tls -}}
{{- if or $r.existingSecret $r.url }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ default (include "lacewing.manager.secretName" .) $r.existingSecret }}
      key: {{ ternary $r.existingSecretKey "redis-url" (ne $r.existingSecret "") }}
{{- else if $r.host }}
{{- if $r.passwordSecret.name }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $r.passwordSecret.name }}
      key: {{ $r.passwordSecret.key }}
- name: REDIS_URL
  value: {{ printf "%s://:$(REDIS_PASSWORD)@%s:%d/%d" $scheme $r.host (int $r.port) (int $r.db) | quote }}
{{- else }}
- name: REDIS_URL
  value: {{ printf "%s://%s:%d/%d" $scheme $r.host (int $r.port) (int $r.db) | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Pod-level scheduling knobs shared by every workload: call with a component's values. */}}
{{- define "lacewing.podPlacement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Probes against /healthz and /readyz on a named port. */}}
{{- define "lacewing.probes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ . }}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 6
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ . }}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 3
{{- end -}}

{{/*
The daemon's arguments, shared by the seed peer StatefulSet and the dfdaemon
DaemonSet: call with (dict "root" $ "values" .Values.seedPeer "seed" true).
*/}}
{{- define "lacewing.dfdaemon.args" -}}
- --scheduler
- {{ include "lacewing.schedulerAddresses" .root | quote }}
- --data-dir
- {{ .values.dataDir | quote }}
- --advertise-ip
- $(POD_IP)
- --listen-ip
- {{ .values.listenIp | quote }}
{{- if .seed }}
- --seed
{{- end }}
- --peer-port
- {{ .values.peerPort | quote }}
- --upload-port
- {{ .values.uploadPort | quote }}
- --proxy-port
- {{ .values.proxyPort | quote }}
- --metrics-port
- {{ .values.metricsPort | quote }}
- --socket
- {{ .values.socket | quote }}
- --log-level
- {{ .values.logLevel | quote }}
{{ include "lacewing.tls.args" .root }}
{{- if and (not .seed) .values.containerd.enabled }}
{{- /* The mirror serves exactly the registries containerd was pointed at; http:// ones over plain HTTP. */}}
{{- $registries := list }}
{{- $plain := list }}
{{- range .values.containerd.registries }}
{{- $registries = append $registries (trimPrefix "https://" (trimPrefix "http://" .)) }}
{{- if hasPrefix "http://" . }}{{ $plain = append $plain (trimPrefix "http://" .) }}{{ end }}
{{- end }}
{{- if $registries }}
- --proxy-registries
- {{ join "," $registries | quote }}
{{- end }}
{{- if $plain }}
- --proxy-plain-http-registries
- {{ join "," $plain | quote }}
{{- end }}
{{- end }}
{{- with .values.idc }}
- --idc
- {{ . | quote }}
{{- end }}
{{- with .values.location }}
- --location
- {{ . | quote }}
{{- end }}
{{- if include "lacewing.topology.fromNode" .values }}
- --config
- {{ include "lacewing.topology.dir" . }}/config.yaml
{{- else if .values.config }}
- --config
- /etc/lacewing/config.yaml
{{- end }}
{{- with .values.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
TLS. Every process holds a certificate of the cluster CA whose common name
is lacewing:<role> (manager, scheduler, seed, peer): mutual TLS between all
of them, and the role decides what a caller may do (docs/ARCHITECTURE.md,
"Trust model"). Each workload mounts its role's Secret (tls.crt, tls.key,
ca.crt) at /etc/lacewing-tls and is started with --tls-dir.
*/}}
{{- define "lacewing.tls.roles" -}}manager scheduler seed peer{{- end -}}

{{/* The Secret of a role's certificate: call with (dict "root" $ "role" "peer"). */}}
{{- define "lacewing.tls.secretName" -}}
{{- if eq .root.Values.tls.mode "existing" -}}
{{- required (printf "tls.existingSecrets.%s is required with tls.mode existing" .role) (index .root.Values.tls.existingSecrets .role) -}}
{{- else -}}
{{- printf "%s-tls-%s" (include "lacewing.fullname" .root) .role -}}
{{- end -}}
{{- end -}}

{{- define "lacewing.tls.mountPath" -}}/etc/lacewing-tls{{- end -}}

{{- define "lacewing.tls.args" -}}
- --tls-dir
- {{ include "lacewing.tls.mountPath" . | quote }}
{{- end -}}

{{- define "lacewing.tls.volumeMount" -}}
- name: tls
  mountPath: {{ include "lacewing.tls.mountPath" . }}
  readOnly: true
{{- end -}}

{{/* Group-readable (the pods' fsGroup): processes that run as 65532 read their key. */}}
{{- define "lacewing.tls.volume" -}}
- name: tls
  secret:
    secretName: {{ include "lacewing.tls.secretName" . }}
    defaultMode: 288 {{- /* 0440 */}}
{{- end -}}

{{/* A restart when the certificates change: the processes read them at start. */}}
{{- define "lacewing.tls.checksum" -}}
{{- $secret := lookup "v1" "Secret" .root.Release.Namespace (include "lacewing.tls.secretName" .) -}}
{{- if $secret -}}{{ $secret.data | toYaml | sha256sum | trunc 16 }}{{- else -}}new{{- end -}}
{{- end -}}

{{/*
Zones without hand-written labels. With topology.source node, and idc or
location left empty, an init container (dfdaemon node-topology) reads the
pod's own Node object and writes the daemon's config file with idc from the
node's region label and location region|zone (docs/ARCHITECTURE.md,
"Operations", and the chart's README, "Zones"); the idc and location values
are flags and win over it. Call these
with the component's values (and "root" where named).
*/}}
{{- define "lacewing.topology.fromNode" -}}
{{- if and (eq .topology.source "node") (or (not .idc) (not .location)) }}true{{ end }}
{{- end -}}

{{- define "lacewing.topology.dir" -}}/run/lacewing-topology{{- end -}}

{{/* The init container: call with (dict "root" $ "values" .Values.dfdaemon). */}}
{{- define "lacewing.topology.initContainer" -}}
- name: node-topology
  image: {{ include "lacewing.image" .root }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  args:
    - dfdaemon
    - node-topology
    - --out
    - {{ include "lacewing.topology.dir" . }}/config.yaml
    - --region-label
    - {{ .values.topology.regionLabel | quote }}
    - --zone-label
    - {{ .values.topology.zoneLabel | quote }}
    {{- if .values.config }}
    {{- /* The config values as the ConfigMap renders them (JSON, see configmaps.yaml); their idc and location win over the labels. */}}
    - --base-config
    - /etc/lacewing/config.yaml
    {{- end }}
  env:
    - name: NODE_NAME
      valueFrom:
        fieldRef:
          fieldPath: spec.nodeName
  resources:
    requests:
      cpu: 10m
      memory: 32Mi
    limits:
      cpu: 100m
      memory: 128Mi
  securityContext:
    {{- /* Reads the API and writes one file to an emptyDir: no root, no capabilities. */}}
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop: ["ALL"]
  volumeMounts:
    - name: topology
      mountPath: {{ include "lacewing.topology.dir" . }}
    - name: kube-api-access
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      readOnly: true
    {{- if .values.config }}
    - name: config
      mountPath: /etc/lacewing
      readOnly: true
    {{- end }}
{{- end -}}

{{/* The daemon container's view of the file the init container wrote. */}}
{{- define "lacewing.topology.volumeMount" -}}
- name: topology
  mountPath: {{ include "lacewing.topology.dir" . }}
  readOnly: true
{{- end -}}

{{- define "lacewing.topology.volumes" -}}
- name: topology
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- /* The service account's token for the init container alone: the pods do not automount it (serviceaccount.yaml), so the daemon holds no API credential. */}}
- name: kube-api-access
  projected:
    defaultMode: 0444
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 3607
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
{{- end -}}
