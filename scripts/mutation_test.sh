#!/usr/bin/env bash
# Mutation testing (mutmut) of the modules whose bugs would silently skew the benchmark: the measuring
# (eval/metrics.py, eval/headline.py), alignment (eval/align.py), grayscale (eval/grayscale.py), layout
# (bot/layout.py) and download (bot/download.py) modules, each mutant run against the tests of
# [tool.mutmut] in pyproject.toml that call the mutated function. Run by hand, from anywhere:
#
#   scripts/mutation_test.sh                      # all six modules, smallest first (under an hour on 2 cores)
#   scripts/mutation_test.sh eval.grayscale       # one module
#   MUTATION_JOBS=4 scripts/mutation_test.sh      # more mutants at once on a machine with cores to spare
#
# Prints killed/total per module, every surviving mutant's name and the minutes each module took;
# `.venv/bin/mutmut show NAME` shows a mutant's diff. The mutants are kept in mutants/ (only changed source
# files are mutated again), but every mutant of the named modules is tested again on each run.
# The goal is at least 90 % killed; survivors judged harmless are listed with why in
# benchmarks/mutation_survivors.md.
set -euo pipefail
cd "$(dirname "$0")/.."
MUTMUT=${MUTMUT:-.venv/bin/mutmut}
[ -x "$MUTMUT" ] || { echo "mutation_test.sh: $MUTMUT not found: pip install -e '.[dev]'" >&2; exit 2; }
# mutmut copies the files it does not mutate into mutants/ once and never again: bring them up to date, or
# the mutants would run against stale copies of the code they call.
if [ -d mutants ]; then
    mutated=$(.venv/bin/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["tool"]["mutmut"]["only_mutate"])')
    find bot colorbot colorizer db eval -type f ! -path '*/__pycache__/*' | while read -r file; do
        case " $mutated " in *" $file "*) continue ;; esac
        cmp -s "$file" "mutants/$file" || { mkdir -p "mutants/$(dirname "$file")"; cp -p "$file" "mutants/$file"; }
    done
fi
modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(eval.grayscale eval.headline eval.align eval.metrics bot.layout bot.download)

for module in "${modules[@]}"; do
    echo "== $module ($(date -u +%H:%M:%S) UTC)"
    nice -n 10 "$MUTMUT" run --max-children "${MUTATION_JOBS:-1}" "${module}.*" > "mutants-$module.log" 2>&1 \
        || { tail -n 30 "mutants-$module.log" >&2; echo "mutation_test.sh: mutmut failed on $module" >&2; exit 1; }
done
echo "== done ($(date -u +%H:%M:%S) UTC, ${SECONDS} s in all)"

# `mutmut results --all true` prints "    eval.grayscale.x_name__mutmut_3: killed" for every mutant.
"$MUTMUT" results --all true | awk -v wanted="${modules[*]}" '
    BEGIN { n = split(wanted, list, " "); for (i = 1; i <= n; i++) keep[list[i]] = 1 }
    {
        name = $1; sub(/:$/, "", name); status = $0; sub(/^[^:]*: /, "", status)
        module = ""
        for (m in keep) if (index(name, m ".x") == 1) module = m
        if (module == "") next
        total[module]++
        # A mutant that crashes the test process (segfault) fails the suite as surely as a failing assertion.
        if (status == "killed" || status == "timeout" || status == "segfault" || status == "caught by type check") killed[module]++
        else survivors[module] = survivors[module] "    " name " (" status ")\n"
    }
    END {
        for (module in total) {
            printf "%-16s %4d/%-4d killed (%.1f %%)\n", module, killed[module], total[module],
                   100 * killed[module] / total[module]
            printf "%s", survivors[module]
            all += total[module]; dead += killed[module]
        }
        if (all) printf "all              %4d/%-4d killed (%.1f %%)\n", dead, all, 100 * dead / all
    }'
