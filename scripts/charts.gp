# Charts of docs/BENCHMARKS.md, drawn from the data files of scripts/bench.sh
# (scripts/charts.sh runs this):
#   gnuplot -e "results='build/bench-results'; img='docs/img'" scripts/charts.gp
# (add format='png' for PNG instead of SVG, e.g. to look at them)
# setup-time.svg and teardown-time.svg: wall-clock time against the number of
# published ports for portpub, CNI bridge + portmap and netavark (log-log);
# throughput.svg and connections.svg: one bar per path of the proxy benchmark.
# A chart whose main data file is missing is left out; a line whose file is
# missing is left out of its chart (gnuplot warns).

if (!exists("results")) results = "build/bench-results"
if (!exists("img")) img = "docs/img"
if (!exists("format")) format = "svg"

have(name) = int(system("test -s '" . results . "/" . name . "' && echo 1 || echo 0"))
data(name) = results . "/" . name

set datafile missing "-"
set datafile commentschars "#"
if (format eq "png") {
    set terminal pngcairo size 820,580 enhanced font "sans,11" background "white"
} else {
    set terminal svg size 820,580 dynamic enhanced font "sans,13" background "white"
}
chart(name) = img . "/" . name . "." . format
set border lw 1.2
set grid lc rgb "#dddddd" lw 1
# Keys below the plot, where no line can run under them.
set key below maxrows 2 box spacing 1.1
set bmargin 7

# One colour per program, the same on every chart.
c_portpub = "#1f5fa8"
c_portpub6 = "#6a9fd8"
c_cni = "#d9731a"
c_netavark = "#2e8b3d"
c_docker = "#8c4aa8"
c_kernel = "#555555"
c_direct = "#999999"

# --- time against the number of ports -------------------------------------
set logscale xy
set xrange [0.8:90000]
set xtics ("1" 1, "10" 10, "100" 100, "1,000" 1000, "10,000" 10000, "65,535" 65535)
set yrange [1:*]
set ytics ("1" 1, "10" 10, "100" 100, "1,000" 1e3, "10,000" 1e4, "100,000" 1e5, \
    "1,000,000" 1e6)
set xlabel "published TCP ports of one container (N mappings H:H; 65,535: one range)"
set ylabel "wall-clock time (ms, log scale)"

if (have("publish-ipv4.dat")) {
    set output chart("setup-time")
    set title "Publishing N ports: time to set up one container (median)"
    plot \
        data("publish-ipv4.dat") using 1:3 with linespoints lw 2.5 pt 7 ps 0.9 lc rgb c_portpub \
            title "portpub up (IPv4)", \
        data("publish-ipv6.dat") using 1:3 \
            with linespoints lw 2 dt 2 pt 6 ps 0.9 lc rgb c_portpub6 title "portpub up (IPv4 + IPv6)", \
        data("publish-ipv4.dat") using 1:6 with linespoints lw 2.5 pt 5 ps 0.9 lc rgb c_cni \
            title "CNI bridge + portmap ADD", \
        data("netavark.dat") using 1:3 \
            with linespoints lw 2.5 pt 9 ps 1.1 lc rgb c_netavark title "netavark 1.4 setup"

    set output chart("teardown-time")
    set title "Publishing N ports: time to tear down one container (median)"
    plot \
        data("publish-ipv4.dat") using 1:4 with linespoints lw 2.5 pt 7 ps 0.9 lc rgb c_portpub \
            title "portpub down (IPv4)", \
        data("publish-ipv6.dat") using 1:4 \
            with linespoints lw 2 dt 2 pt 6 ps 0.9 lc rgb c_portpub6 title "portpub down (IPv4 + IPv6)", \
        data("publish-ipv4.dat") using 1:7 with linespoints lw 2.5 pt 5 ps 0.9 lc rgb c_cni \
            title "CNI portmap + bridge DEL", \
        data("netavark.dat") using 1:4 \
            with linespoints lw 2.5 pt 9 ps 1.1 lc rgb c_netavark title "netavark 1.4 teardown"
}

# --- the proxy benchmark: one bar a path ----------------------------------
unset logscale
unset xrange
set xtics () nomirror scale 0
set ytics autofreq
set format y "%g"
set yrange [0:*]
set xlabel ""
set style fill solid 0.85 border lc rgb "#333333"
set boxwidth 0.6
unset key
set bmargin
set grid noxtics ytics
# Bar colour by the path's label (column 2).
colour(label) = label eq "kernel path" ? c_kernel : label eq "portpub proxy" ? c_portpub6 : \
    label eq "kernel rewriting" ? c_portpub : label eq "docker-proxy" ? c_docker : c_direct
rgb(label) = int("0x" . colour(label)[2:7])

if (have("proxy.dat")) {
    set output chart("throughput")
    set title "Bulk TCP throughput, one iperf3 stream (median)"
    set ylabel "Gbit/s"
    plot data("proxy.dat") using 0:3:(rgb(strcol(2))):xtic(2) with boxes lc rgb variable, \
         '' using 0:3:(sprintf("%.2f", $3)) with labels offset 0,0.8 font ",12"

    set output chart("connections")
    set title "Short TCP connections per second, 32 at a time (median)"
    set ylabel "connections per second"
    plot data("proxy.dat") using 0:4:(rgb(strcol(2))):xtic(2) with boxes lc rgb variable, \
         '' using 0:4:(sprintf("%.0f", $4)) with labels offset 0,0.8 font ",12"
}
