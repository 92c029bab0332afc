package targeting

// InNamespace reports whether the shopper identified by id falls in the [start, end) slice of
// the named namespace (a layer, in xsell's words), as GrowthBook's inNamespace does.
func InNamespace(id, name string, start, end float64) bool {
	n := NamespaceHash(id, name)
	return n >= start && n < end
}

// NamespaceHash is where id falls in the named namespace, in [0, 1): hash version 1 of
// id + "__" + name. Experiments sharing a namespace share it, so a request works it out once.
func NamespaceHash(id, name string) float64 {
	return hashV1(fnv1a32(fnv1a32(fnv1a32(fnvOffset32, id), "__"), name))
}
