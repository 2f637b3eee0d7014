# SPDX-License-Identifier: BSD-3-Clause
# A lighttpd on 127.0.0.1 serving files with range support, for the
# filter-over-curl test and bench/remote-bench.sh. Sourced; uses PYTHON
# when set. lighttpd buffers its access log, so requests are counted once
# it has stopped (stop_http sets REQUESTS; not in a $(...) subshell, which
# would keep HTTP_PID set there only). The probe connection of start_http
# sends no request, so it is not logged.
HTTP_PID=

# http_setup DIR: serve DIR/www (made here) on a free port: HTTP_PORT,
# HTTP_LOG (the access log), HTTP_CONF.
http_setup() {
  mkdir -p "$1/www"
  HTTP_PORT=$("${PYTHON:-python3}" -c \
    'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  HTTP_LOG=$1/access.log
  HTTP_CONF=$1/lighttpd.conf
  cat > "$HTTP_CONF" <<CONF
server.document-root = "$1/www"
server.bind = "127.0.0.1"
server.port = $HTTP_PORT
server.modules = ("mod_accesslog")
accesslog.filename = "$HTTP_LOG"
server.errorlog = "$1/error.log"
CONF
}

# start_http: a fresh lighttpd with an empty access log; 1 when it does not
# answer within 5 s.
start_http() {
  rm -f "$HTTP_LOG"
  lighttpd -D -f "$HTTP_CONF" &
  HTTP_PID=$!
  local i
  for i in $(seq 50); do
    "${PYTHON:-python3}" -c "import socket; socket.create_connection(('127.0.0.1', $HTTP_PORT))" \
      2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

stop_http() {
  kill "$HTTP_PID" 2>/dev/null
  wait "$HTTP_PID" 2>/dev/null
  HTTP_PID=
  REQUESTS=0
  [ ! -f "$HTTP_LOG" ] || REQUESTS=$(wc -l < "$HTTP_LOG")
  return 0
}
