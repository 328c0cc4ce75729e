#!/bin/sh
# make run: start the worklist server on a demo database and show how to
# query it. The database (mwl.db here) is created with demo items the first
# time; later runs keep whatever it holds (delete it to start afresh).
set -eu
mwl="$1"
port="$2"
db="${MWL_DB:-mwl.db}"
http_port="${MWL_HTTP_PORT:-8080}"   # the web page and REST API, loopback only
hl7_port="${MWL_HL7_PORT:-2575}"     # HL7 v2 orders over MLLP, loopback only
if [ ! -s "$db" ]; then
  "$mwl" demo --db "$db" --count 60 --days 7
fi
cat <<MSG

mwl is serving the worklist in $db on port $port (AE title MWL). In another terminal:

  $mwl find --aec MWL localhost $port                 # today's worklist, all stations
  $mwl find --aec MWL --station CT01 localhost $port  # today's worklist for station CT01
  findscu -W -aec MWL -k "ScheduledProcedureStepSequence[0].Modality=CT" \\
          -k PatientName -k PatientID -k AccessionNumber localhost $port
  $mwl echo --aec MWL localhost $port                 # C-ECHO
  $mwl ls --db $db                                    # what is stored for today

The worklist page: http://127.0.0.1:$http_port/ (REST API: docs/http.md).
HL7 v2 orders: $mwl hl7send --port $hl7_port ORDER.hl7 (docs/hl7.md).

Stop the server with Ctrl-C.

MSG
exec "$mwl" serve --db "$db" --port "$port" --aet MWL --http-port "$http_port" \
  --hl7-port "$hl7_port" --hl7-bind 127.0.0.1
