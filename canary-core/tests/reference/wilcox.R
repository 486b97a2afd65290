# Reference vectors for canary_core::stats::rank_sum, made once with R (Debian r-base-core):
#   Rscript wilcox.R > wilcox.txt
# Each line: name;x;y;W;p-value;CI lower;CI upper;estimate (x and y comma-separated).
# The test reads wilcox.txt; it does not need R.
set.seed(20261128)
fmt <- function(v) paste(sprintf("%.17g", v), collapse = ",")
emit <- function(name, x, y) {
  r <- wilcox.test(x, y, conf.int = TRUE, exact = FALSE, correct = TRUE, conf.level = 0.98)
  cat(name, fmt(x), fmt(y), fmt(r$statistic), fmt(r$p.value),
      fmt(r$conf.int[1]), fmt(r$conf.int[2]), fmt(r$estimate), sep = ";")
  cat("\n")
}
# Continuous samples of several sizes, shifted and not.
for (i in 1:12) {
  nx <- sample(c(5, 10, 30, 60), 1); ny <- sample(c(5, 10, 30, 60), 1)
  shift <- sample(c(0, 0.2, 1), 1)
  emit(sprintf("lognormal-%02d", i), rlnorm(nx, log(0.12) + shift * 0.5, 0.5), rlnorm(ny, log(0.12), 0.5))
}
# Heavy ties: per-minute values rounded as a dashboard shows them.
for (i in 1:8) {
  emit(sprintf("ties-%02d", i), round(rnorm(20, 100 + i, 3)), round(rnorm(25, 100, 3)))
}
# Error rates with many zeros, as Kayenta sees them.
for (i in 1:4) {
  emit(sprintf("zeros-%02d", i), pmax(0, round(rnorm(10, 0.2 * i, 0.5), 1)), pmax(0, round(rnorm(10, 0, 0.5), 1)))
}
# Extremes: one against many (an interval end at the data's range), and a complete separation.
emit("one-vs-many", 1, as.numeric(2:60))
emit("separated", c(10, 11, 12, 13, 14), c(1, 2, 3, 4, 5, 6))
emit("small-shift", c(0.101, 0.103, 0.099, 0.105, 0.102, 0.104), c(0.1, 0.098, 0.101, 0.097, 0.099, 0.1))
