"""Domain types, errors and settings shared by every custos package.

``core`` imports nothing else of custos; every other package may import it.
"""
