public enum ClabChecksPlaceholder {}
