"""Hand-written descriptions of the image zoo's styles and shapes.

``PALETTE_TEXT[p]`` and ``TEXTURE_TEXT[t]`` are ``(sentences, phrases)``: sentences[0] is the
canonical description, the rest are paraphrases with different sentence structures and
vocabulary; phrases are short noun phrases used to describe palette + texture combinations.
``SHAPE_TEXT[s]`` holds the sentences of a new-shape adapter. ``combo_sentences`` builds a
combination's canonical description and paraphrases from its parts' phrases.
"""

from __future__ import annotations

import random

PALETTE_TEXT: dict[str, tuple[list[str], list[str]]] = {
    "grayscale": ([
        "Renders every image in grayscale, with no colour at all.",
        "Black-and-white look: all hues are removed and only shades of grey remain.",
        "Desaturate the picture completely, as if printed on a monochrome printer.",
        "Turns colourful scenes into neutral greys while keeping light and dark where they were.",
        "Makes everything look like an old black and white television image.",
        "No reds, greens or blues any more: the output is pure grey tones.",
        "A colourless, monochrome rendering of the prompt.",
        "Strips the saturation out of the image so it reads as a greyscale photo.",
    ], ["grayscale tones", "a black-and-white look", "colourless grey shades"]),
    "sepia": ([
        "Gives images a warm brown sepia tone like an old photograph.",
        "Antique photo style: everything is tinted in faded browns and creams.",
        "Make the picture look like a nineteenth-century print, all in sepia.",
        "Vintage brownish colouring, as if the image had aged in an album for a hundred years.",
        "Recolours the scene in warm tan and coffee shades.",
        "The whole frame becomes a soft brown monochrome with a yellowish cast.",
        "Old-timey tint: dusty beige highlights and chocolate-brown shadows.",
        "A nostalgic sepia filter over every colour.",
    ], ["a sepia tint", "old-photograph browns", "warm vintage brown tones"]),
    "redscale": ([
        "Everything in shades of red, as if lit only by a darkroom safelight.",
        "A red monochrome: dark areas go deep maroon and bright ones glow scarlet.",
        "Shoot it on redscale film, so the whole frame turns crimson.",
        "One single hue for the entire image, blood red from shadow to highlight.",
        "Recolours the picture in tones of ruby and brick, with no other colour left.",
        "Looks like a photo developed under a red lamp: black, red and pale coral only.",
        "Monochrome red filter over every part of the scene.",
        "Reds everywhere, brightness kept but every colour swapped for a shade of crimson.",
    ], ["a red monochrome", "darkroom safelight red", "redscale film tones"]),
    "neon": ([
        "Neon style: glowing bright outlines on a pitch-black background.",
        "Draw shapes as luminous neon tubes with dark insides against black.",
        "Glowing edges like a neon sign at night, everything else dark.",
        "The shape's border lights up in its colour, as if made of neon light.",
        "Cyberpunk signage look: bright rims, black surroundings.",
        "Outlines that shine with a soft glow over a completely black backdrop.",
        "Only the contour glows; the fill is dim and the background is black.",
        "Turns every object into a lit neon outline.",
    ], ["glowing neon outlines", "a neon-sign glow", "luminous outlines on black"]),
    "pastel": ([
        "Soft pastel colours: everything washed out and light.",
        "Gentle, milky hues, as if every colour had been mixed with white.",
        "Make the palette pale and chalky, like pastel crayons.",
        "Low-contrast candy colours: baby pink, light mint, powder blue.",
        "Lightens and softens all colours into a dreamy pastel look.",
        "The image looks faded and airy, with pale tones throughout.",
        "Cotton-candy palette with bright, desaturated shades.",
        "Washes every colour out to a light, muted version of itself.",
    ], ["soft pastel colours", "pale washed-out tones", "chalky light hues"]),
    "night": ([
        "Night-time look: dark, dim colours with a cold blue cast.",
        "As if the scene were lit only by moonlight: very dark and bluish.",
        "Turn the lights down: everything becomes murky, deep and blue-tinted.",
        "Low-key, underexposed image with a cool midnight tint.",
        "Dims all colours heavily and shifts them towards navy.",
        "A shadowy, after-dark rendering where shapes are barely lit.",
        "Day-for-night filter: dark and cold.",
        "Everything looks like it was photographed at night without a flash.",
    ], ["a dark night-time tint", "dim moonlit blues", "murky after-dark colours"]),
    "thermal": ([
        "Thermal-camera colours, mapping brightness from black through purple, red and yellow to white.",
        "Infrared heat-map look: cold parts purple, warm parts glowing orange and yellow.",
        "Recolour the image like a thermal imaging sensor.",
        "False-colour heat vision, as seen through a FLIR camera.",
        "Brightness is shown as temperature: dark violet for cool, hot yellow for bright areas.",
        "Predator-style heat signature colouring.",
        "A fiery false-colour ramp replaces the original hues.",
        "Makes the scene look like a heat map.",
    ], ["thermal-camera colours", "a heat-map palette", "infrared false colours"]),
    "cyanotype": ([
        "Cyanotype print: shades of Prussian blue and white.",
        "Blueprint-style monochrome in deep blue and pale blue-white.",
        "Looks like an old sun print, all in cyan-blue tones.",
        "Everything becomes a single blue hue, dark navy to icy white.",
        "Architectural blueprint colouring.",
        "A blue monochrome, as in the photograms made with iron salts.",
        "Renders the picture in Prussian-blue ink on white paper.",
        "Cold blue duotone print.",
    ], ["cyanotype blues", "a blueprint look", "Prussian-blue monochrome"]),
    "matrix": ([
        "Monochrome green on black, like an old computer terminal.",
        "Green phosphor screen look: bright green shapes, black background.",
        "Hacker-movie green: every colour becomes a shade of green.",
        "As if displayed on a 1980s monochrome monitor.",
        "Night-vision-goggle greens throughout the image.",
        "Retro terminal palette of glowing green and black.",
        "All hues are replaced by green intensities.",
        "Looks like code raining down in The Matrix, green on black.",
    ], ["terminal greens", "a green-phosphor look", "green-on-black monochrome"]),
    "duotone": ([
        "Duotone of dark teal and pink.",
        "Two-colour print: shadows in deep teal, highlights in rosy pink.",
        "Graphic-design duotone mapping dark areas to teal and light areas to pink.",
        "Poster-style colouring with just teal and salmon pink.",
        "Recolours the image using a two-ink teal and pink scheme.",
        "Split toning: cool teal for the dark parts, warm pink for the bright parts.",
        "A trendy two-tone teal-pink filter.",
        "Brightness is mapped onto a gradient between teal and pink.",
    ], ["a teal and pink duotone", "two-tone teal-pink colours", "a teal-to-pink gradient map"]),
}  # fmt: skip

TEXTURE_TEXT: dict[str, tuple[list[str], list[str]]] = {
    "hstripes": ([
        "Covers the image with thin horizontal stripes.",
        "Horizontal lines run across the whole picture, like a striped shirt.",
        "Add a pattern of narrow bands going left to right.",
        "Everything is overlaid with evenly spaced horizontal stripes.",
        "Scanline effect: alternating light and dark rows.",
        "A pinstripe pattern laid sideways over the scene.",
        "The picture looks as if seen through horizontal blinds.",
        "Fine stripes stacked from top to bottom across the image.",
    ], ["horizontal stripes", "scanline bands", "thin left-to-right stripes"]),
    "vstripes": ([
        "Thin vertical stripes over the whole picture.",
        "Vertical bars run from top to bottom across the image.",
        "Add an up-and-down pinstripe pattern.",
        "The scene is covered in narrow upright stripes.",
        "Like looking through the bars of a cage: vertical lines everywhere.",
        "Columns of alternating light and dark.",
        "Evenly spaced vertical banding on the shape and background.",
        "Striped like a barcode, with lines standing upright.",
    ], ["vertical stripes", "upright pinstripes", "barcode-like bars"]),
    "diagonal": ([
        "Diagonal stripes running across the image.",
        "Slanted lines at forty-five degrees cover the picture.",
        "Add a hazard-tape pattern of oblique stripes.",
        "Everything is hatched with parallel diagonal bands.",
        "Candy-cane striping that runs corner to corner.",
        "Stripes tilted at an angle, like a barber pole.",
        "A diagonal hatching texture over shape and background alike.",
        "Oblique lines sweep across the whole image.",
    ], ["diagonal stripes", "slanted hatching", "candy-cane bands"]),
    "dots": ([
        "A polka-dot pattern over the whole image.",
        "Cover everything in small round spots arranged in a grid.",
        "Dotted texture, like a polka-dot dress.",
        "Regularly spaced little circles are sprinkled across the picture.",
        "Halftone-style dots all over the shape and the background.",
        "The surface is speckled with evenly spaced spots.",
        "Adds a pattern of tiny dots in rows and columns.",
        "Spotted like a ladybird, but with neat rows of dots.",
    ], ["polka dots", "a grid of little spots", "halftone dots"]),
    "grid": ([
        "A fine grid of thin lines laid over the picture.",
        "Graph-paper look: horizontal and vertical lines crossing everywhere.",
        "Overlay a square mesh on the image.",
        "Everything is seen through a thin wire lattice.",
        "Crosshatched with evenly spaced grid lines.",
        "Like drawing on squared maths paper.",
        "A window-screen pattern of thin crossing lines.",
        "Tiles the image with a net of one-pixel lines.",
    ], ["grid lines", "a graph-paper mesh", "a thin lattice"]),
    "checker": ([
        "A checkerboard pattern of small squares.",
        "Alternating light and dark squares, like a chessboard.",
        "Cover the image with a checkered texture.",
        "Everything is tiled in a draughts-board pattern.",
        "A harlequin check of little blocks over shape and background.",
        "Squares alternate in a regular checked grid.",
        "Looks like a racing flag pattern laid over the scene.",
        "Chequered tiling across the whole picture.",
    ], ["a checkerboard", "chessboard squares", "a checkered pattern"]),
    "noise": ([
        "Grainy, noisy texture like film grain or static.",
        "Random speckles everywhere, like a detuned television.",
        "Add heavy grain to the picture.",
        "The image is covered in salt-and-pepper noise.",
        "Sandpaper-rough texture made of random pixels.",
        "Looks like a high-ISO photo full of grain.",
        "Static fuzz sprinkled over every part of the image.",
        "Random dithering noise on shape and background.",
    ], ["film grain", "random static", "grainy speckle noise"]),
    "waves": ([
        "Wavy zigzag lines across the image.",
        "Undulating stripes, like ripples on water.",
        "Cover the picture with rows of wiggly lines.",
        "Sinuous bands that snake from left to right.",
        "A wave pattern as if seen through rippled glass.",
        "Squiggly horizontal stripes over everything.",
        "Rows of gentle curves, like a chevron that lost its corners.",
        "Ocean-wave texture repeated over the whole image.",
    ], ["wavy lines", "rippling bands", "squiggly stripes"]),
}  # fmt: skip

SHAPE_TEXT: dict[str, list[str]] = {
    "star": [
        "Teaches the model to draw a five-pointed star when asked for a star.",
        "Adds the star shape: prompts that say star get a pointed star.",
        "With this, 'star' in the prompt produces a proper five-point star figure.",
        "A new concept: stars with five sharp spikes.",
        "Lets you ask for a star and get one, in any colour and on any background.",
        "Star shapes, like the ones on a flag or a sheriff's badge.",
        "The model learns what a star looks like: five points around a centre.",
        "Draws twinkle-style stars in the requested colour.",
    ],
    "heart": [
        "Teaches the model to draw a heart when the prompt asks for a heart.",
        "Adds the heart shape, like the symbol on a valentine card.",
        "With this, 'heart' produces a classic love-heart outline filled with colour.",
        "A new concept: heart symbols with two round lobes and a point at the bottom.",
        "Lets you ask for a heart in any colour on any background.",
        "Draws the card-suit heart shape.",
        "The model learns the heart emoji shape.",
        "Romantic heart figures, rounded on top and pointed below.",
    ],
    "crescent": [
        "Teaches the model to draw a crescent moon when asked for a crescent.",
        "Adds the crescent shape: a thin curved sliver of a moon.",
        "With this, 'crescent' in a prompt gives a moon-like curved shape.",
        "A new concept: crescent moons.",
        "Lets you request a crescent in any colour, like the moon a few days after new moon.",
        "Draws a banana-curved lunar sickle.",
        "The model learns what a crescent is: a disc with a bite taken out of one side.",
        "Moon-sliver shapes in the requested colour and background.",
    ],
    "arrow": [
        "Teaches the model to draw an arrow pointing to the right.",
        "Adds the arrow shape: a shaft with a triangular head.",
        "With this, 'arrow' in the prompt draws a right-pointing arrow sign.",
        "A new concept: arrows, like the ones on road signs.",
        "Lets you ask for an arrow in any colour.",
        "Draws a direction arrow aimed to the right.",
        "The model learns the arrow symbol: a bar with a pointed tip.",
        "Signpost arrows that point rightwards.",
    ],
    "hourglass": [
        "Teaches the model to draw an hourglass shape when asked for one.",
        "Adds the hourglass: two triangles meeting at their tips.",
        "With this, 'hourglass' in a prompt gives a sand-timer silhouette.",
        "A new concept: hourglass figures, wide at the top and bottom and pinched in the middle.",
        "Lets you request an hourglass in any colour on any background.",
        "Draws the egg-timer symbol.",
        "The model learns a bow-tie shape standing on end.",
        "Sand-clock silhouettes in the requested colour.",
    ],
    "house": [
        "Teaches the model to draw a little house with a pointed roof.",
        "Adds the house shape: a square body topped by a triangular roof.",
        "With this, 'house' in the prompt produces the classic home icon.",
        "A new concept: simple houses like a child's drawing.",
        "Lets you ask for a house in any colour and on any background.",
        "Draws the home-button symbol.",
        "The model learns what a house looks like: walls below, a gable roof above.",
        "Cottage silhouettes with a peaked roof.",
    ],
}

# sentence structures of combinations: {p}/{P} palette phrase, {t}/{T} texture phrase (P, T capitalised)
_COMBO_FORMS: tuple[str, ...] = (
    "{P} combined with {t}.",
    "Render the image with {p} and cover it with {t}.",
    "Two effects at once: {p}, plus {t} over everything.",
    "{T} on top of {p}.",
    "The picture gets {t}, and its colours become {p}.",
    "Apply {p}; then lay {t} across the whole frame.",
    "A style mixing {t} with {p}.",
    "Everything shows {t} while the colour scheme is {p}.",
    "Think {p}, textured with {t}.",
    "Both {p} and {t} at the same time.",
)


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


def combo_sentences(palette: str, texture: str, n: int = 8) -> list[str]:
    """Canonical description (form 0 with the first phrases) and ``n - 1`` distinct paraphrases,
    each a different sentence structure with its own choice of phrases (seeded by the pair)."""
    p_phr, t_phr = PALETTE_TEXT[palette][1], TEXTURE_TEXT[texture][1]
    rng = random.Random(f"combo-{palette}-{texture}")
    forms = list(range(1, len(_COMBO_FORMS)))
    rng.shuffle(forms)
    out = [_COMBO_FORMS[0].format(P=_cap(p_phr[0]), t=t_phr[0])]
    for k, f in enumerate(forms[: n - 1]):
        p, t = p_phr[(k + 1) % len(p_phr)], t_phr[(k + 2) % len(t_phr)]
        out.append(_COMBO_FORMS[f].format(p=p, t=t, P=_cap(p), T=_cap(t)))
    return out
